"""The contract's stable codes map back to the SDK's typed exceptions."""

from __future__ import annotations

import dtoken.errors as sdk
import pytest
from deposit_token import errors as contract
from fabcontract.errors import UnknownTransaction


def test_the_sdk_knows_every_code_the_contract_and_its_framework_raise() -> None:
    # Both sides use dtoken_wire's classes, so this holds by construction.
    assert contract.CODES == sdk.CODES
    assert UnknownTransaction.code in sdk.CODES


@pytest.mark.parametrize("code", sorted(contract.CODES))
def test_each_code_becomes_the_very_class_the_contract_raises(code: str) -> None:
    contract_cls = type(contract.refusal_from_message(f"{code}: x"))
    error = sdk.contract_error(f"{code}: the detail", transaction_id="tx1")
    assert error.code == code
    assert error.detail == "the detail"
    assert error.transaction_id == "tx1"
    assert type(error) is contract_cls
    assert isinstance(error, sdk.ContractError)
    assert isinstance(error, sdk.DTokenError)


def test_a_wrapped_message_is_read_at_its_code_and_an_unknown_one_is_kept_whole() -> None:
    error = sdk.contract_error("chaincode response 500, INSUFFICIENT_FUNDS: not enough")
    assert isinstance(error, sdk.InsufficientFunds)
    assert error.detail == "not enough"
    assert isinstance(sdk.contract_error("XNOT_FOUND: y FROZEN: z"), sdk.AccountFrozen)
    unknown = sdk.contract_error("something broke")
    assert type(unknown) is sdk.UnknownContractError
    assert str(unknown) == "something broke"
    assert type(sdk.contract_error("NOT_A_CODE: x")) is sdk.UnknownContractError


def test_the_tree_separates_usage_refusal_and_fault() -> None:
    assert issubclass(sdk.OutcomeUnknown, sdk.NetworkFault)
    assert issubclass(sdk.ProfileError, sdk.UsageError)
    for cls in (sdk.UsageError, sdk.ContractError, sdk.CommitFailed, sdk.NetworkFault):
        assert issubclass(cls, sdk.DTokenError)
    assert not issubclass(sdk.ContractError, sdk.NetworkFault)
