"""The reserve's bank account as `make run` provisions it: config in the config table, keys in Secrets Manager
(moto), the adapter found by bank name and reaching the CMB sandbox with what was stored."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.banks.accounts import BankAccountConfig, bank_account, put_bank_account
from chalicelib.banks.base import Transfer, TransferState
from chalicelib.banks.registry import adapter_for
from chalicelib.config.settings import settings
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.money import Money
from chalicelib.storage import config_repo
from infra.local.provision.cmbbank import RESERVE_ID, provision
from sandbox.cmbbank.server import CMBBankSandbox


@pytest.fixture(scope="module")
def bank_box(stack: object) -> Iterator[CMBBankSandbox]:  # stack: moto and the stage's tables
    sandbox = CMBBankSandbox()
    sandbox.start()
    yield sandbox
    sandbox.stop()


def test_provisioned_account_is_stored_and_the_registry_adapter_pays_from_it(
        bank_box: CMBBankSandbox, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        config = provision(bank_box.base_url)
        stored = bank_account(RESERVE_ID)
    assert stored is not None and stored.config == config
    assert (config.bank, config.uid, config.currencies, config.api_base_url) == (
        "cmb", "N002466694", ("CNY",), bank_box.api_url)
    raw = config_repo.get_secret(settings().names.bank_secret(RESERVE_ID))
    assert set(raw) == {"our_private_key", "sm4_key", "bank_public_key"}
    for value in raw.values():  # never echoed: not in the log, not in the loaded account's repr
        assert value not in caplog.text and value not in repr(stored)
    assert stored.secrets.sm4_key.reveal() == raw["sm4_key"]

    status = adapter_for("cmb").submit_transfer(config.ref(), Transfer(
        reference="E2EPAYOUT1", amount=Money(100, "CNY"), payee_account_no="755900000000009", payee_name="招行收款人"))
    assert status.state is TransferState.SUCCEEDED
    today = datetime.now(UTC).astimezone(timezone(timedelta(hours=8))).date()
    statement = adapter_for("cmb").statement(config.ref(), today)
    assert [e.transfer_reference for e in statement.entries] == ["E2EPAYOUT1"]
    assert statement.closing_balance == Money(100_000_000 - 100, "CNY")


def test_an_unknown_account_or_bank_and_missing_secrets_are_refused_by_name(stack: object) -> None:
    assert bank_account("rsv-none") is None
    with pytest.raises(InvalidRequest, match="bank must be one of"):
        adapter_for("icbc")
    config = BankAccountConfig(reserve_id="rsv-x", bank="cmb", api_base_url="http://127.0.0.1:9/x", uid="U1",
                               account_no="1", account_name="x", currencies=("CNY",), our_public_key="ab")
    with pytest.raises(ValueError, match="sm4_key, bank_public_key"):
        put_bank_account(config, {"our_private_key": "k"})
    with pytest.raises(ValueError, match="currencies"):
        BankAccountConfig(reserve_id="rsv-x", bank="cmb", api_base_url="http://127.0.0.1:9/x", uid="U1",
                          account_no="1", account_name="x", currencies=(), our_public_key="ab")
    with pytest.raises(ValueError, match="reserve_id"):
        BankAccountConfig(reserve_id="RSV X", bank="cmb", api_base_url="http://127.0.0.1:9/x", uid="U1",
                          account_no="1", account_name="x", currencies=("CNY",), our_public_key="ab")
