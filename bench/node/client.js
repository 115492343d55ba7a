'use strict';
// Benchmark anchor: a small load client on the stock Node Gateway client
// (@hyperledger/fabric-gateway) driving the same workloads as the Python load generator.
//
//   node client.js CONFIG.json     prints one JSON object (the raw measurements) on stdout
//
// CONFIG: {endpoint, serverName, tlsCaCertPath, mspId, certPath, keyPath, channel,
//          chaincode, workload: "noop" | "transfer", concurrency, durationS, warmupS,
//          signer: "stock" | "node-crypto", pairs: [[from, to], ...], refPrefix}
// Closed loop: `concurrency` workers, each submitting (endorse, submit, wait for commit)
// one transaction after another; worker i owns pairs[i] (no two in-flight transactions
// touch the same account, so any MVCC conflict would be a real one).

const fs = require('node:fs');
const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const {connect, signers, hash} = require('@hyperledger/fabric-gateway');

const P256_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

function lowSNodeSigner(key) {
    // node:crypto (OpenSSL) ECDSA: the gateway passes the whole message (hash.none) and
    // OpenSSL hashes it with SHA-256; the signature is normalized to low-S as Fabric requires.
    return async (message) => {
        const raw = crypto.sign('sha256', message, {key, dsaEncoding: 'ieee-p1363'});
        const r = BigInt('0x' + raw.subarray(0, 32).toString('hex'));
        let s = BigInt('0x' + raw.subarray(32).toString('hex'));
        if (s > P256_N / 2n) {
            s = P256_N - s;
        }
        return derEncode(r, s);
    };
}

function intBytes(v) {
    let hex = v.toString(16);
    if (hex.length % 2) {
        hex = '0' + hex;
    }
    let b = Buffer.from(hex, 'hex');
    if (b[0] & 0x80) {
        b = Buffer.concat([Buffer.from([0]), b]);
    }
    return b;
}

function derEncode(r, s) {
    const rb = intBytes(r);
    const sb = intBytes(s);
    const body = Buffer.concat([Buffer.from([0x02, rb.length]), rb, Buffer.from([0x02, sb.length]), sb]);
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

function classify(err) {
    const name = err && err.constructor ? err.constructor.name : 'Error';
    if (name === 'CommitError') {
        // StatusCode names: MVCC_READ_CONFLICT = 11, PHANTOM_READ_CONFLICT = 12
        if (err.code === 11 || err.code === 12) {
            return 'mvcc';
        }
        return `commit_${err.code}`;
    }
    if (name === 'EndorseError') {
        const text = String(err.details && err.details.length ? err.details[0].message : err.message);
        const m = /chaincode response \d+, ([A-Z_]+):/.exec(text);
        return m ? `endorse_${m[1]}` : 'endorse';
    }
    if (name === 'SubmitError') {
        return 'submit';
    }
    if (name === 'CommitStatusError') {
        return 'commit_status';
    }
    return `other_${name}`;
}

async function main() {
    const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
    const tlsCa = fs.readFileSync(cfg.tlsCaCertPath);
    const client = new grpc.Client(cfg.endpoint, grpc.credentials.createSsl(tlsCa), {
        'grpc.ssl_target_name_override': cfg.serverName,
        'grpc.max_receive_message_length': 100 * 1024 * 1024,
    });
    const key = crypto.createPrivateKey(fs.readFileSync(cfg.keyPath));
    const tuned = cfg.signer === 'node-crypto';
    const signer = tuned ? lowSNodeSigner(key) : signers.newPrivateKeySigner(key);
    const gateway = connect({
        client,
        identity: {mspId: cfg.mspId, credentials: fs.readFileSync(cfg.certPath)},
        signer,
        hash: tuned ? hash.none : hash.sha256,
        evaluateOptions: () => ({deadline: Date.now() + 5000}),
        endorseOptions: () => ({deadline: Date.now() + 15000}),
        submitOptions: () => ({deadline: Date.now() + 5000}),
        commitStatusOptions: () => ({deadline: Date.now() + 60000}),
    });
    const contract = gateway.getNetwork(cfg.channel).getContract(cfg.chaincode);

    const latencies = [];
    const failures = {};
    let counting = false;
    let stopping = false;
    let cpuStart = null;
    let tStart = 0;

    async function one(worker, n) {
        if (cfg.workload === 'noop') {
            await contract.submit('noop', {endorsingOrganizations: [cfg.mspId]});
            return;
        }
        const [a, b] = cfg.pairs[worker];
        const [from, to] = n % 2 === 0 ? [a, b] : [b, a];
        const request = {reference: `${cfg.refPrefix}-${worker}-${n}`, from_account: from, to_account: to, amount: 1};
        await contract.submit('transfer', {
            transientData: {request: Buffer.from(JSON.stringify(request))},
            endorsingOrganizations: [cfg.mspId],
        });
    }

    async function worker(i) {
        let n = 0;
        while (!stopping) {
            const t0 = process.hrtime.bigint();
            try {
                await one(i, n);
                if (counting) {
                    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
                }
            } catch (err) {
                if (counting) {
                    const kind = classify(err);
                    failures[kind] = (failures[kind] || 0) + 1;
                }
            }
            n += 1;
        }
    }

    const workers = [];
    for (let i = 0; i < cfg.concurrency; i++) {
        workers.push(worker(i));
    }
    await new Promise((r) => setTimeout(r, cfg.warmupS * 1000));
    process.stderr.write('WINDOW_OPEN\n');
    counting = true;
    cpuStart = process.cpuUsage();
    tStart = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, cfg.durationS * 1000));
    counting = false;
    process.stderr.write('WINDOW_CLOSED\n');
    const elapsed = Number(process.hrtime.bigint() - tStart) / 1e9;
    const cpu = process.cpuUsage(cpuStart);
    stopping = true;
    await Promise.all(workers);
    gateway.close();
    client.close();
    process.stdout.write(JSON.stringify({
        elapsed_s: elapsed,
        latencies_ms: latencies,
        failures,
        cpu_s: (cpu.user + cpu.system) / 1e6,
    }) + '\n');
}

main().catch((err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
});
