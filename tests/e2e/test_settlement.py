"""Merchant settlement from the reserve, against moto over the wire: real payments through the WeChat Pay
sandbox (paid yesterday, Beijing, so the day has ended), T+N terms, the minimum, holds placed and released by
an operator (audited), pauses, the bank's answer, and two runs racing for the same money."""

from __future__ import annotations

import secrets
import threading
from datetime import date, timedelta
from typing import Any

import pytest

from chalicelib.domain import ledger
from chalicelib.domain.clock import beijing_today
from chalicelib.domain.errors import Conflict, DayNotOver, InvalidRequest, NotFound
from chalicelib.service import audit, settlement
from tests.e2e.money_kit import Shop, noon, yesterday
from tests.helpers import wait_for

OPERATOR = audit.Actor("cli", "ops-test", "ops-test")
TERMS = {"delay_days": 0, "minimum_minor": 0, "fee_bps": 60, "reserve_id": "rsv-icbc-1",
         "payee_account_no": "6225880112340001", "payee_name": "Tea House Ltd"}


@pytest.fixture
def shop(stack: Any, drain: Any) -> Shop:
    return Shop(stack, drain)


def test_a_merchant_on_t0_is_paid_yesterdays_money_less_the_hubs_fee(shop: Shop) -> None:
    settlement.set_terms(OPERATOR, shop.merchant_id, TERMS)
    shop.paid(10_000, on=yesterday())
    shop.paid(2_345, on=yesterday())
    fee_income_before = -shop.balance(ledger.fee_income_account("CNY"))

    record = settlement.settle_day(shop.merchant_id, "CNY", yesterday())

    assert record["outcome"] == "settle" and record["status"] == "instructed"
    assert (record["gross"], record["fee"], record["net"]) == (12_345, 74, 12_271)  # 0.6 % of 12,345 = 74.07
    assert shop.payable == 0 and shop.settling == 12_271
    assert -shop.balance(ledger.fee_income_account("CNY")) - fee_income_before == 74
    # The same day again: the same record, nothing posted twice.
    assert settlement.settle_day(shop.merchant_id, "CNY", yesterday()) == record
    assert shop.settling == 12_271


def test_t1_waits_a_day_and_money_of_today_is_never_paid_early(shop: Shop) -> None:
    settlement.set_terms(OPERATOR, shop.merchant_id, {**TERMS, "delay_days": 1})
    shop.paid(5_000, on=yesterday() - timedelta(days=1))  # matured for yesterday's run
    shop.paid(7_000, on=yesterday())  # matures for today's run
    shop.paid(900, on=beijing_today())  # today's: due tomorrow

    first = settlement.settle_day(shop.merchant_id, "CNY", yesterday())
    assert (first["outcome"], first["gross"]) == ("settle", 5_000)
    tomorrow_morning = noon(beijing_today() + timedelta(days=1)) - timedelta(hours=3)
    second = settlement.settle_day(shop.merchant_id, "CNY", beijing_today(), now=tomorrow_morning)
    assert (second["outcome"], second["gross"]) == ("settle", 7_000)
    assert shop.payable == 900  # today's payment stays owed, not yet due


def test_below_the_minimum_the_money_waits_and_goes_with_the_next_day(shop: Shop) -> None:
    settlement.set_terms(OPERATOR, shop.merchant_id, {**TERMS, "minimum_minor": 10_000, "fee_bps": 0})
    shop.paid(6_000, on=yesterday() - timedelta(days=1))
    small = settlement.settle_day(shop.merchant_id, "CNY", yesterday() - timedelta(days=1))
    assert (small["outcome"], small["net"]) == ("below_minimum", 0) and shop.payable == 6_000
    shop.paid(6_000, on=yesterday())
    enough = settlement.settle_day(shop.merchant_id, "CNY", yesterday())
    assert (enough["outcome"], enough["net"]) == ("settle", 12_000) and shop.payable == 0


def test_holds_are_kept_back_until_an_operator_releases_them_and_every_step_is_audited(shop: Shop) -> None:
    settlement.set_terms(OPERATOR, shop.merchant_id, {**TERMS, "fee_bps": 0})
    shop.paid(10_000, on=yesterday() - timedelta(days=1))
    hold = settlement.place_hold(OPERATOR, shop.merchant_id, 3_000, "CNY", "chargeback inquiry 4471")
    first = settlement.settle_day(shop.merchant_id, "CNY", yesterday() - timedelta(days=1))
    assert first["net"] == 7_000
    assert -shop.balance(ledger.settlement_hold_account(shop.merchant_id, "CNY")) == 3_000

    released = settlement.release_hold(OPERATOR, hold["hold_id"], "inquiry closed in the merchant's favour")
    assert released["status"] == "released" and shop.payable == 3_000
    with pytest.raises(Conflict):
        settlement.release_hold(OPERATOR, hold["hold_id"], "again")
    second = settlement.settle_day(shop.merchant_id, "CNY", yesterday())
    assert second["net"] == 3_000  # released money is due at once: it had matured before it was held

    actions = [(r["action"], r["target"]) for r in audit.list_records(limit=50, action="settlement.")[0]]
    assert ("settlement.hold", shop.merchant_id) in actions and ("settlement.release", hold["hold_id"]) in actions
    assert ("settlement.terms", shop.merchant_id) in actions


def test_a_paused_merchant_is_paid_nothing_and_its_money_stays_owed(shop: Shop) -> None:
    settlement.set_terms(OPERATOR, shop.merchant_id, {**TERMS, "paused": True})
    shop.paid(4_000, on=yesterday())
    record = settlement.settle_day(shop.merchant_id, "CNY", yesterday())
    assert (record["outcome"], record["status"], record["net"]) == ("paused", "none", 0)
    assert shop.payable == 4_000 and shop.settling == 0


def test_the_banks_answer_moves_the_money_out_of_the_reserve_or_back_to_the_merchant(shop: Shop) -> None:
    settlement.set_terms(OPERATOR, shop.merchant_id, TERMS)
    reserve = ledger.reserve_account(TERMS["reserve_id"], "CNY")
    shop.paid(20_000, on=yesterday() - timedelta(days=1))
    first = settlement.settle_day(shop.merchant_id, "CNY", yesterday() - timedelta(days=1))
    before = shop.balance(reserve)
    paid = settlement.finish_settlement(first["settlement_id"], paid=True, bank_reference="B1",
                                        value_day=beijing_today())
    assert paid["status"] == "paid" and shop.balance(reserve) == before - first["net"] and shop.settling == 0
    with pytest.raises(Conflict):
        settlement.finish_settlement(first["settlement_id"], paid=False, bank_reference="B1", value_day=beijing_today())

    shop.paid(8_000, on=yesterday())
    second = settlement.settle_day(shop.merchant_id, "CNY", yesterday())
    fee_income = shop.balance(ledger.fee_income_account("CNY"))
    returned = settlement.finish_settlement(second["settlement_id"], paid=False, bank_reference="B2",
                                            value_day=beijing_today())
    assert returned["status"] == "returned"
    assert shop.payable == 8_000 and shop.settling == 0  # owed again, whole: the fee is given back
    assert shop.balance(ledger.fee_income_account("CNY")) == fee_income + second["fee"]


def test_two_runs_racing_for_the_same_money_pay_it_once(shop: Shop) -> None:
    settlement.set_terms(OPERATOR, shop.merchant_id, {**TERMS, "fee_bps": 0})
    shop.paid(9_000, on=yesterday() - timedelta(days=1))
    days = [yesterday() - timedelta(days=1), yesterday()] * 3
    outcomes: list[Any] = []
    barrier = threading.Barrier(len(days))

    def run(day: date) -> None:
        barrier.wait()
        try:
            outcomes.append(settlement.settle_day(shop.merchant_id, "CNY", day)["net"])
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(day,)) for day in days]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shop.settling == 9_000 and shop.payable == 0  # the ledger paid it once
    assert sum(r["net"] for r in _records(shop.merchant_id, days)) == 9_000  # and the records say so
    assert len(outcomes) == len(days) and any(isinstance(o, int) and o == 9_000 for o in outcomes)


def _records(merchant_id: str, days: list[date]) -> list[dict[str, Any]]:
    found = []
    for day in set(days):
        try:
            found.append(settlement.get_settlement(settlement.settlement_id(merchant_id, "CNY", day)))
        except NotFound:
            continue
    return found


def test_a_day_that_has_not_ended_is_refused_and_bad_terms_name_their_field(shop: Shop) -> None:
    settlement.set_terms(OPERATOR, shop.merchant_id, TERMS)
    with pytest.raises(DayNotOver) as refused:
        settlement.settle_day(shop.merchant_id, "CNY", beijing_today())
    assert refused.value.param == "day" and refused.value.http_status == 422
    for bad, field in (({**TERMS, "fee_bps": 5_000}, "fee_bps"), ({**TERMS, "delay_days": -1}, "delay_days"),
                       ({**TERMS, "minimum_minor": "10"}, "minimum_minor"), ({**TERMS, "speed": 1}, "speed"),
                       ({k: v for k, v in TERMS.items() if k != "reserve_id"}, "reserve_id")):
        with pytest.raises(InvalidRequest) as error:
            settlement.set_terms(OPERATOR, shop.merchant_id, bad)
        assert error.value.param == field, (bad, error.value.message)
    with pytest.raises(NotFound):
        settlement.settle_day(f"mer_{secrets.token_hex(8)}", "CNY", yesterday())
    assert settlement.terms_of(shop.merchant_id) == settlement.SettlementTerms(**TERMS)
    settlement.set_terms(OPERATOR, shop.merchant_id, {k: v for k, v in TERMS.items() if not k.startswith("payee")})
    shop.paid(1_000, on=yesterday())
    nowhere = settlement.settle_day(shop.merchant_id, "CNY", yesterday())
    assert (nowhere["outcome"], nowhere["status"]) == ("no_payee_account", "none") and shop.payable == 1_000


def test_the_operator_cli_sets_terms_holds_settles_and_releases(shop: Shop, capsys: Any) -> None:
    import json

    from payhub_cli.main import main as payhub

    def cli(*argv: str) -> tuple[int, Any, str]:
        code = payhub(list(argv))
        out, err = capsys.readouterr()
        return code, (json.loads(out) if code == 0 else None), err

    code, terms, _ = cli("settlement", "terms", shop.merchant_id, "--delay-days", "0", "--minimum", "100",
                         "--fee-bps", "30", "--reserve", "rsv-icbc-1", "--payee-account", "6225880112340009",
                         "--payee-name", "Tea House Ltd")
    assert code == 0 and terms["fee_bps"] == 30
    shop.paid(50_000, on=yesterday())
    code, held, _ = cli("settlement", "hold", shop.merchant_id, "--amount", "10000", "--reason", "KYC review")
    assert code == 0 and held["status"] == "held"
    code, record, _ = cli("settlement", "run", "--merchant", shop.merchant_id, "--date", yesterday().isoformat())
    assert code == 0 and (record["gross"], record["fee"], record["net"]) == (40_000, 120, 39_880)
    code, shown, _ = cli("settlement", "show", record["settlement_id"])
    assert code == 0 and shown == record
    code, _, err = cli("settlement", "run", "--merchant", shop.merchant_id, "--date", beijing_today().isoformat())
    assert code == 1 and "has not ended in Beijing yet" in err
    code, released, _ = cli("settlement", "release", held["hold_id"], "--reason", "KYC passed")
    assert code == 0 and released["status"] == "released" and shop.payable == 10_000
    code, _, err = cli("settlement", "terms", shop.merchant_id, "--delay-days", "0", "--fee-bps", "9999",
                       "--reserve", "rsv-icbc-1")
    assert code == 1 and "fee_bps" in err


def test_a_refund_today_takes_matured_money_away_at_once(shop: Shop) -> None:
    """Only money arriving waits for T+N; a refund dated today reduces what is owed now (else the money refunded
    today would be settled as well)."""
    settlement.set_terms(OPERATOR, shop.merchant_id, {**TERMS, "delay_days": 1, "fee_bps": 0})
    payment = shop.paid(10_000, on=yesterday() - timedelta(days=1))
    shop.paid(2_000, on=beijing_today())  # today's capture: not due
    answer = shop.client.call("POST", f"/v1/payments/{payment['id']}/refunds",
                              {"amount": 10_000, "merchant_refund_no": "all-back"})
    assert answer.status_code == 201, answer.text
    shop.drain()
    wait_for(lambda: shop.client.get(f"/v1/refunds/{answer.json()['id']}")["status"] == "succeeded")
    record = settlement.settle_day(shop.merchant_id, "CNY", yesterday())
    assert (record["outcome"], record["owed"]) == ("nothing_due", 0)
    assert shop.payable == 2_000
