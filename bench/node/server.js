'use strict';
// Benchmark anchor: a chaincode on the official Node shim (fabric-shim 2.5), run as a
// service exactly like our Python servers (same CHAINCODE_* environment, mutual TLS).
//
// Transactions (function name = first argument):
//   noop                 does nothing (the ceiling).
//   init_network         writes the public registry (bank name <-> MSP id), once.
//   open_account         creates an account with an opening balance (setup only).
//   transfer             the same state-access pattern as the Python contract's `transfer`:
//                        reads the registry (public) once per process, then reference,
//                        payer, payee (bank collection) and the regulator's hold (holds
//                        collection); checks identity role, balance and status; writes
//                        payer, payee, two history records and the reference record
//                        (no supply record: supply does not change), each salted with
//                        HMAC(org secret, tx id, collection, key). Input: JSON in the
//                        transient map under "request"; returns {"tx_id": ...}.
// The shim 2.5 has no write batching and no multi-key reads: one round trip per call.

const fs = require('node:fs');
const crypto = require('node:crypto');
const shim = require('fabric-shim');

const SECRET = process.env.DTOKEN_SECRET_FILE ? fs.readFileSync(process.env.DTOKEN_SECRET_FILE) : Buffer.alloc(32);
const SERVER_MSP = process.env.DTOKEN_BANK_MSP || '';

function hmac(...parts) {
    const h = crypto.createHmac('sha256', SECRET);
    for (const p of parts) {
        h.update(String(p));
        h.update('\x00');
    }
    return h.digest('hex').slice(0, 32);
}

function canonical(obj) {
    // sorted keys, compact: what every endorser must produce byte for byte
    if (Array.isArray(obj)) {
        return '[' + obj.map(canonical).join(',') + ']';
    }
    if (obj !== null && typeof obj === 'object') {
        return '{' + Object.keys(obj).sort().map((k) => JSON.stringify(k) + ':' + canonical(obj[k])).join(',') + '}';
    }
    return JSON.stringify(obj);
}

function fail(code, text) {
    return shim.error(Buffer.from(`${code}: ${text}`));
}

function isoTime(stub) {
    const ts = stub.getTxTimestamp();
    const ms = Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6);
    return new Date(ms).toISOString();
}

class Anchor {
    async Init() {
        return shim.success();
    }

    async Invoke(stub) {
        const {fcn} = stub.getFunctionAndParameters();
        try {
            switch (fcn) {
                case 'noop':
                    return shim.success();
                case 'init_network':
                    return await this.initNetwork(stub);
                case 'open_account':
                    return await this.openAccount(stub);
                case 'transfer':
                    return await this.transfer(stub);
                default:
                    return fail('UNKNOWN_TRANSACTION', 'no such transaction');
            }
        } catch (err) {
            return fail('INTERNAL', `unexpected ${err && err.name}`);
        }
    }

    request(stub) {
        const raw = stub.getTransient().get('request');
        if (!raw) {
            throw new Error('no request');
        }
        return JSON.parse(Buffer.from(raw).toString('utf8'));
    }

    async registry(stub) {
        // Written once by init_network and never again: kept once read (as the Python
        // contract does).
        if (this.cachedRegistry) {
            return this.cachedRegistry;
        }
        const raw = await stub.getState('registry');
        if (!raw || raw.length === 0) {
            return null;
        }
        this.cachedRegistry = JSON.parse(Buffer.from(raw).toString('utf8'));
        return this.cachedRegistry;
    }

    async initNetwork(stub) {
        const req = this.request(stub);
        const existing = await stub.getState('registry');
        if (existing && existing.length) {
            return fail('ALREADY_INITIALIZED', 'the registry exists already');
        }
        await stub.putState('registry', Buffer.from(canonical(req)));
        return shim.success(Buffer.from(canonical({tx_id: stub.getTxID()})));
    }

    servingBank(registry) {
        return registry.banks.find((b) => b.msp_id === SERVER_MSP);
    }

    put(stub, txId, collection, key, record, writes) {
        record.salt = hmac('salt', txId, collection, key);
        record.v = 1;
        writes.push(stub.putPrivateData(collection, key, Buffer.from(canonical(record))));
    }

    async openAccount(stub) {
        const req = this.request(stub);
        const registry = await this.registry(stub);
        if (!registry) {
            return fail('NOT_INITIALIZED', 'init_network has not run');
        }
        const bank = this.servingBank(registry);
        const txId = stub.getTxID();
        const coll = `acct-${bank.name}`;
        const account = {
            type: 'account', account_id: req.account_id, bank: bank.name, currency: req.currency,
            owner_ref: req.owner_ref, balance: req.balance, status: 'active', seq: 0,
            outflow_day: '', outflow: 0, limits: {}, opened_at: isoTime(stub),
        };
        const writes = [];
        this.put(stub, txId, coll, `acct/${req.account_id}`, account, writes);
        await Promise.all(writes);
        return shim.success(Buffer.from(canonical({tx_id: txId})));
    }

    async transfer(stub) {
        const req = this.request(stub);
        const registry = await this.registry(stub);
        if (!registry) {
            return fail('NOT_INITIALIZED', 'init_network has not run');
        }
        const bank = this.servingBank(registry);
        if (!bank) {
            return fail('WRONG_ENDORSER', 'this chaincode server does not serve a bank');
        }
        const cid = new shim.ClientIdentity(stub);
        if (cid.getMSPID() !== bank.msp_id) {
            return fail('WRONG_ENDORSER', 'this server endorses only its own bank');
        }
        if (cid.getAttributeValue('operator') !== 'true') {
            return fail('NOT_AUTHORIZED', 'the operator role is required');
        }
        if (!Number.isSafeInteger(req.amount) || req.amount <= 0) {
            return fail('INVALID_AMOUNT', 'request.amount must be a positive integer');
        }
        const txId = stub.getTxID();
        const at = isoTime(stub);
        const coll = `acct-${bank.name}`;
        const refKey = `ref/${hmac('reference', 'payment', req.reference)}`;
        const ref = await stub.getPrivateData(coll, refKey);
        if (ref && ref.length) {
            return fail('DUPLICATE_REFERENCE', 'the client reference was applied already');
        }
        const payerRaw = await stub.getPrivateData(coll, `acct/${req.from_account}`);
        const payeeRaw = await stub.getPrivateData(coll, `acct/${req.to_account}`);
        if (!payerRaw || !payerRaw.length || !payeeRaw || !payeeRaw.length) {
            return fail('NOT_FOUND', 'the account does not exist');
        }
        const payer = JSON.parse(Buffer.from(payerRaw).toString('utf8'));
        const payee = JSON.parse(Buffer.from(payeeRaw).toString('utf8'));
        let hold = null;
        if (registry.regulator_msp_id) {
            const holdRaw = await stub.getPrivateData(`holds-${bank.name}`, `hold/${req.from_account}`);
            hold = holdRaw && holdRaw.length ? JSON.parse(Buffer.from(holdRaw).toString('utf8')) : null;
        }
        if (payer.currency !== payee.currency) {
            return fail('CURRENCY_MISMATCH', 'the accounts are not in the same currency');
        }
        if (payer.status !== 'active' || payee.status === 'closed' || (hold && hold.frozen)) {
            return fail('FROZEN', 'the account cannot be debited');
        }
        const held = hold ? hold.held_amount || 0 : 0;
        if (payer.balance - held < req.amount) {
            return fail('INSUFFICIENT_FUNDS', 'the balance is too low');
        }
        const day = at.slice(0, 10);
        payer.outflow = (payer.outflow_day === day ? payer.outflow : 0) + req.amount;
        payer.outflow_day = day;
        payer.balance -= req.amount;
        payee.balance += req.amount;
        payer.seq += 1;
        payee.seq += 1;
        const writes = [];
        this.put(stub, txId, coll, `acct/${payer.account_id}`, payer, writes);
        this.put(stub, txId, coll, `acct/${payee.account_id}`, payee, writes);
        this.put(stub, txId, coll, `hist/${payer.account_id}/${String(payer.seq).padStart(12, '0')}`, {
            type: 'history', account_id: payer.account_id, seq: payer.seq, kind: 'transfer_out',
            delta: -req.amount, balance: payer.balance, counterparty_bank: bank.name,
            counterparty_account: payee.account_id, tx_id: txId, at,
        }, writes);
        this.put(stub, txId, coll, `hist/${payee.account_id}/${String(payee.seq).padStart(12, '0')}`, {
            type: 'history', account_id: payee.account_id, seq: payee.seq, kind: 'transfer_in',
            delta: req.amount, balance: payee.balance, counterparty_bank: bank.name,
            counterparty_account: payer.account_id, tx_id: txId, at,
        }, writes);
        this.put(stub, txId, coll, refKey, {type: 'reference', kind: 'transfer', tx_id: txId, at, ids: []}, writes);
        await Promise.all(writes);
        return shim.success(Buffer.from(canonical({tx_id: txId})));
    }
}

function main() {
    const env = process.env;
    const required = ['CHAINCODE_ID', 'CHAINCODE_SERVER_ADDRESS', 'CHAINCODE_TLS_CERT', 'CHAINCODE_TLS_KEY'];
    for (const name of required) {
        if (!env[name]) {
            console.error(`${name} is required`);
            process.exit(2);
        }
    }
    const tlsProps = {
        key: fs.readFileSync(env.CHAINCODE_TLS_KEY),
        cert: fs.readFileSync(env.CHAINCODE_TLS_CERT),
    };
    if (env.CHAINCODE_CLIENT_CA_CERT) {
        tlsProps.clientCACerts = fs.readFileSync(env.CHAINCODE_CLIENT_CA_CERT);
    }
    const server = shim.server(new Anchor(), {
        ccid: env.CHAINCODE_ID,
        address: env.CHAINCODE_SERVER_ADDRESS,
        tlsProps,
        'grpc.max_send_message_length': 100 * 1024 * 1024,
        'grpc.max_receive_message_length': 100 * 1024 * 1024,
    });
    server.start().then(() => {
        console.error(`node chaincode server listening on ${env.CHAINCODE_SERVER_ADDRESS}`);
    }, (err) => {
        console.error(`cannot start: ${err}`);
        process.exit(1);
    });
    const stop = () => process.exit(0);
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

main();
