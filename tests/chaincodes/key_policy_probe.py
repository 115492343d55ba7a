"""key_policy_probe: private records pinned by a key-level endorsement policy, for the
integration tests of ``tests/integration/test_key_policies.py``.

Deploy it as a chaincode-as-a-service and serve it with::

    PYTHONPATH=tests/chaincodes python -m fabshim serve key_policy_probe:chaincode

Each transaction is one step a bank's chaincode takes on a record another bank relies on:
create it and pin it in one transaction, rewrite, delete, purge or re-pin it. Policies are
"``n`` out of these MSP ids' peers", built by ``fabshim.n_out_of_policy`` (the same bytes
for the same organizations in any order). Private values travel in the transient map under
``"value"``, never in arguments. Validation parameters come back as hex, byte for byte.

Must not: write anything but the key it is asked about, or plant bytes that do not parse as
a policy (``set_raw_parameter``) anywhere but a throwaway network: hyperledger/fabric#3105
halts block processing on every peer at the next write of such a key.
"""

from __future__ import annotations

from fabcontract import Context, Contract, ContractChaincode, transaction
from fabshim import all_of_policy, n_out_of_policy


def _value(ctx: Context) -> bytes:
    value = ctx.transient.get("value")
    if not value:
        raise ValueError("MISSING_TRANSIENT: put the value in the transient map under 'value'")
    return value


class KeyPolicyProbe(Contract):
    """One stub step per transaction on a private key with a key-level policy."""

    @transaction()
    async def create_pinned(
        self, ctx: Context, collection: str, key: str, msp_ids: list[str], n: int = 0
    ) -> str:
        """Write the transient value and pin the key to ``n`` (all when 0) of ``msp_ids``'
        peers, in one transaction. Returns the parameter written, as hex."""
        policy = n_out_of_policy(n or len(msp_ids), msp_ids)
        await ctx.stub.put_private_data(collection, key, _value(ctx))
        await ctx.stub.set_private_data_validation_parameter(collection, key, policy)
        return policy.hex()

    @transaction()
    async def put(self, ctx: Context, collection: str, key: str) -> None:
        """Write (create or rewrite) the transient value, leaving the key's policy as is."""
        await ctx.stub.put_private_data(collection, key, _value(ctx))

    @transaction()
    async def delete(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.del_private_data(collection, key)

    @transaction()
    async def purge(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.purge_private_data(collection, key)

    @transaction()
    async def set_parameter(
        self, ctx: Context, collection: str, key: str, msp_ids: list[str], n: int = 0
    ) -> str:
        """Re-pin an existing key (a metadata write only). Returns the parameter, as hex."""
        policy = n_out_of_policy(n or len(msp_ids), msp_ids)
        await ctx.stub.set_private_data_validation_parameter(collection, key, policy)
        return policy.hex()

    @transaction()
    async def set_raw_parameter(
        self, ctx: Context, collection: str, key: str, parameter_hex: str
    ) -> None:
        """Write these exact bytes as the key's parameter. Throwaway networks only (#3105)."""
        await ctx.stub.set_private_data_validation_parameter(
            collection, key, bytes.fromhex(parameter_hex)
        )

    @transaction()
    async def rely_on(
        self, ctx: Context, collection: str, key: str, msp_ids: list[str], note_key: str
    ) -> None:
        """What a reader does before relying on a record: check its parameter byte for byte
        against "all of ``msp_ids``' peers" (reading only the parameter, not the value), then
        write a note of its own under ``note_key``."""
        parameter = await ctx.stub.get_private_data_validation_parameter(collection, key)
        if parameter != all_of_policy(msp_ids):
            raise ValueError(f"NOT_PINNED: {key} does not carry the expected policy")
        await ctx.stub.put_private_data(collection, note_key, _value(ctx))

    @transaction(evaluate=True)
    async def get(self, ctx: Context, collection: str, key: str) -> str | None:
        value = await ctx.stub.get_private_data(collection, key)
        return None if value is None else value.decode("utf-8")

    @transaction(evaluate=True)
    async def get_hash(self, ctx: Context, collection: str, key: str) -> str | None:
        digest = await ctx.stub.get_private_data_hash(collection, key)
        return None if digest is None else digest.hex()

    @transaction(evaluate=True)
    async def get_parameter(self, ctx: Context, collection: str, key: str) -> str | None:
        parameter = await ctx.stub.get_private_data_validation_parameter(collection, key)
        return None if parameter is None else parameter.hex()


chaincode = ContractChaincode(KeyPolicyProbe())
