"""A merchant with money: payments paid at the WeChat Pay sandbox on a given Beijing day (so the day can be
settled or paid out from), and its ledger balances."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import requests

from chalicelib.domain import ledger
from chalicelib.domain.clock import BEIJING, beijing_today
from chalicelib.storage import ledger_repo
from tests.helpers import make_merchant, wait_for


def yesterday() -> date:
    return beijing_today() - timedelta(days=1)


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=BEIJING)


class Shop:
    def __init__(self, stack: Any, drain: Any) -> None:
        self.stack, self.drain = stack, drain
        self.client = make_merchant(stack)
        self.merchant_id = self.client.merchant_id

    def paid(self, amount: int, *, on: date) -> dict[str, Any]:
        created = self.client.create_payment(amount=amount)
        answer = requests.post(f"{self.stack.sandbox_url}/_sandbox/pay", timeout=10, json={
            "out_trade_no": created["attempt_id"], "paid_at": noon(on).isoformat()})
        assert answer.status_code == 200, answer.text
        wait_for(lambda: self.client.get(f"/v1/payments/{created['id']}")["status"] == "succeeded")
        return created

    def balance(self, account: str) -> int:
        return ledger_repo.balance(account)

    @property
    def payable(self) -> int:
        return -self.balance(ledger.merchant_payable_account(self.merchant_id, "CNY"))

    @property
    def settling(self) -> int:
        return -self.balance(ledger.merchant_settling_account(self.merchant_id, "CNY"))


