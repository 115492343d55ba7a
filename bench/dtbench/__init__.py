"""dtbench: the deposit-token network's benchmark suite (``bench/run``).

Owns: a load generator on our async Gateway client (closed loop at a concurrency, open loop
at a target rate), the workloads (no-op, mint, transfer within a bank, cross-bank payment
end to end, mixed), the anchors measured in the same run (a Node ``fabric-shim`` chaincode
and a Node ``@hyperledger/fabric-gateway`` client), scaling and batch-setting sweeps, CPU
and memory accounting per process, and the outputs (a JSON record per run, PNG charts and
the ratio table).

Must not: be imported by the project's packages; change a network it did not start (every
network it uses is its own, on the run's ports, ``--base-port`` (8000) to 999 above it, in a
temporary state folder). Importing this package is cheap: the chaincode servers import
:mod:`dtbench.noop` from it.
"""
