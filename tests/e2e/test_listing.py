"""GET /v1/payments and GET /v1/refunds: newest first, filtered, paged by a signed cursor, from the listing index."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from chalicelib.bills import listing
from chalicelib.domain.clock import iso, utcnow
from tests import listing_data as data


def _all_pages(merchant, path: str, limit: int, **params: str) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        query = {"limit": str(limit), **params, **({"cursor": cursor} if cursor else {})}
        response = merchant.call("GET", path + "?" + "&".join(f"{k}={v}" for k, v in query.items()))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["data"])
        assert body["has_more"] == (body["next_cursor"] is not None)
        if not body["has_more"]:
            return pages
        cursor = body["next_cursor"]


def _ids(pages: list[list[dict]]) -> list[str]:
    return [obj["id"] for page in pages for obj in page]


@pytest.fixture
def payments(merchant):
    made = [data.payment(merchant.merchant_id, n) for n in range(60)]
    data.store(made)
    return made


def test_every_payment_once_newest_first_across_pages(merchant, payments):
    pages = _all_pages(merchant, "/v1/payments", 7)
    assert [len(p) for p in pages[:-1]] == [7] * (len(pages) - 1)
    ids = _ids(pages)
    assert ids == [p.payment_id for p in sorted(payments, key=lambda p: p.created_at, reverse=True)]
    first = pages[0][0]
    assert first["object"] == "payment" and first["amount"] == 159 and first["merchant_order_no"] == "ord-59"


@pytest.mark.parametrize("params", [
    {"status": "succeeded"}, {"status": "failed"}, {"method": "alipay.qr"}, {"channel": "wechatpay"},
    {"channel": "stripe", "status": "succeeded"},
    {"created_from": "2026-03-01T00:10:00Z", "created_to": "2026-03-01T08:30:00%2B08:00"},
    {"created_from": "2026-03-01T00:20:00.000Z", "status": "closed", "method": "unionpay.gateway"},
])
def test_filters_give_exactly_the_matching_payments(merchant, payments, params):
    def keeps(p) -> bool:
        prefix = {"wechatpay": "wechat.", "stripe": "stripe.", "alipay": "alipay."}
        return ((params.get("status") in (None, str(p.status))) and (params.get("method") in (None, p.method))
                and ("channel" not in params or p.method.startswith(prefix[params["channel"]]))
                and ("created_from" not in params or p.created_at >= iso(_parse(params["created_from"])))
                and ("created_to" not in params or p.created_at < iso(_parse(params["created_to"]))))

    expected = [p.payment_id for p in sorted(payments, key=lambda p: p.created_at, reverse=True) if keeps(p)]
    assert expected, "the case must select something"
    assert _ids(_all_pages(merchant, "/v1/payments", 5, **params)) == expected


def _parse(text: str):
    from datetime import datetime
    return datetime.fromisoformat(text.replace("%2B", "+").replace("Z", "+00:00"))


def test_by_order_number_and_the_single_lookup_kept(merchant, payments):
    wanted = payments[17]
    listed = merchant.get("/v1/payments?merchant_order_no=ord-17&limit=5")
    assert [p["id"] for p in listed["data"]] == [wanted.payment_id] and listed["has_more"] is False
    assert merchant.get("/v1/payments?merchant_order_no=ord-17")["id"] == wanted.payment_id  # the old contract
    assert merchant.get("/v1/payments?merchant_order_no=nope&limit=5")["data"] == []


def test_a_selective_status_over_a_small_budget_still_misses_nothing(merchant, payments, monkeypatch):
    monkeypatch.setattr(listing, "MAX_EVALUATED", 9)  # forces partial pages that end before the page is full
    pages = _all_pages(merchant, "/v1/payments", 4, status="failed")
    expected = [p.payment_id for p in sorted(payments, key=lambda p: p.created_at, reverse=True)
                if str(p.status) == "failed"]
    assert _ids(pages) == expected
    assert any(len(page) < 4 for page in pages[:-1])  # the budget did cut pages short


def test_no_duplicates_and_no_gaps_while_payments_are_created(merchant, payments):
    """A writer keeps creating payments (now-stamped, as create does) while a client pages through the list:
    every payment present when paging began is returned exactly once, in order."""
    stop = threading.Event()
    created: list[str] = []

    def writer() -> None:
        n = 1000
        while not stop.is_set():
            made = data.payment(merchant.merchant_id, n, created=utcnow())
            data.store([made])
            created.append(made.payment_id)
            n += 1
            time.sleep(0.005)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.1)
        before = {p.payment_id for p in payments} | set(created)
        pages = _all_pages(merchant, "/v1/payments", 6)
    finally:
        stop.set()
        thread.join()
    ids = _ids(pages)
    assert len(ids) == len(set(ids)), "a payment was listed twice"
    assert before <= set(ids), f"missed {before - set(ids)}"
    assert len(created) > 5, "the writer must have run during the listing"


def test_another_merchants_payments_are_never_listed(stack, merchant, payments):
    from tests.helpers import make_merchant

    other = make_merchant(stack)
    data.store([data.payment(other.merchant_id, 5)])
    assert set(_ids(_all_pages(merchant, "/v1/payments", 50))) == {p.payment_id for p in payments}
    assert len(other.get("/v1/payments")["data"]) == 1


def test_a_cursor_that_was_altered_or_moved_is_refused(stack, merchant, payments):
    from tests.helpers import make_merchant

    cursor = merchant.get("/v1/payments?limit=3")["next_cursor"]
    body, _, tag = cursor.partition(".")
    altered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + tag
    for bad in (altered, cursor[:-3], "x" + cursor, "garbage", cursor.replace(".", "")):
        response = merchant.call("GET", f"/v1/payments?limit=3&cursor={bad}")
        assert response.status_code == 400 and response.json()["error"]["param"] == "cursor", bad
    other_filters = merchant.call("GET", f"/v1/payments?limit=3&status=succeeded&cursor={cursor}")
    assert other_filters.status_code == 400 and "filters" in other_filters.json()["error"]["message"]
    other = make_merchant(stack)
    assert other.call("GET", f"/v1/payments?limit=3&cursor={cursor}").status_code == 400
    assert merchant.call("GET", f"/v1/refunds?limit=3&cursor={cursor}").status_code == 400


@pytest.mark.parametrize(("query", "param"), [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"), ("status=paid", "status"),
    ("method=wechat.card", "method"), ("channel=visa", "channel"), ("created_from=2026-03-01", "created_from"),
    ("created_to=2026-03-01T00:00:00", "created_to"),
    ("created_from=2026-03-02T00:00:00Z&created_to=2026-03-01T00:00:00Z", "created_to"), ("colour=red", "colour"),
    ("payment_id=pay_1", "payment_id"),
])
def test_bad_parameters_are_400s_naming_the_parameter(merchant, query, param):
    response = merchant.call("GET", f"/v1/payments?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_refunds_by_status_channel_payment_and_order(merchant, payments):
    refunds = [data.refund(merchant.merchant_id, payments[n % 6], n) for n in range(24)]
    data.store(refunds)
    newest = sorted(refunds, key=lambda r: r.created_at, reverse=True)
    assert _ids(_all_pages(merchant, "/v1/refunds", 5)) == [r.refund_id for r in newest]
    assert _ids(_all_pages(merchant, "/v1/refunds", 4, status="failed", channel="alipay")) == [
        r.refund_id for r in newest if str(r.status) == "failed" and r.channel == "alipay"]
    of_payment = [r.refund_id for r in newest if r.payment_id == payments[2].payment_id]
    assert _ids(_all_pages(merchant, "/v1/refunds", 2, payment_id=payments[2].payment_id)) == of_payment
    assert _ids(_all_pages(merchant, "/v1/refunds", 2, merchant_order_no="ord-2")) == of_payment
    assert merchant.get("/v1/refunds?merchant_order_no=none")["data"] == []
    assert merchant.call("GET", "/v1/refunds?method=wechat.native").json()["error"]["param"] == "method"


def test_a_payment_created_through_the_api_is_listed_at_once(merchant):
    made = merchant.create_payment(amount=2345)
    listed = merchant.get("/v1/payments?limit=1")
    assert listed["data"][0]["id"] == made["id"] and listed["data"][0]["amount"] == 2345
    window = merchant.get(f"/v1/payments?created_from={iso(utcnow() - timedelta(minutes=5))}&channel=wechatpay")
    assert [p["id"] for p in window["data"]] == [made["id"]]
