"""Monthly merchant statements, made from the ledger so they add up with it to the fen.

For a merchant, a currency and a Beijing calendar month, the lines are the ledger entries of the merchant's
payable account (``merchant_payable:<merchant>:<CCY>``, chalicelib/domain/ledger.py) value-dated to a day of
that month, read day by day and shard by shard from the ledger's ``value_day`` index: one line for every
journal that moved the merchant's money (payments captured, refunds paid, automatic refunds of late payments
included). Each line is completed from the records it refers to (the payment's order number, the channel and
its transaction number).

Before anything is stored the statement is checked against the ledger's own running day totals (the ``DAY#``
items the same transactions ``ADD`` to, chalicelib/storage/ledger_repo.py), which are summed independently of
the entries: a statement whose lines do not add up to them, to the fen, is not published (``StatementMismatch``,
an alert) and the next run tries again. Amounts stay integers of minor units from the ledger to the CSV.

Stored as PDF, CSV (UTF-8 with BOM, which spreadsheet programs need to read Chinese text) and JSON under
``statements/<merchant>/<YYYY-MM>/``, then announced to the merchant by a ``statement.available`` webhook event
(written through the outbox like every other event; the event id is fixed per merchant, month and currency, so
a re-run never announces twice). The event links to ``GET /v1/statements/{month}``, which answers with
short-lived download links.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

from chalicelib.bills import store
from chalicelib.documents.pdf import Document, Fields, Note, Table, money, render
from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.ledger import merchant_payable_account
from chalicelib.domain.models import Merchant
from chalicelib.domain.value_class import value_class
from chalicelib.observability import alert
from chalicelib.storage import ledger_repo, outbox, records, shards, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item
from chalicelib.storage.recon_index import BEIJING
from chalicelib.storage.transaction import Transaction, TransactionConflict

log = logging.getLogger(__name__)
EVENT_TYPE = "statement.available"
PARALLEL = 16
CSV_COLUMNS = ("value_day", "booked_at", "type", "payment_id", "merchant_order_no", "refund_id",
               "merchant_refund_no", "channel", "channel_transaction_id", "amount_minor", "amount", "currency",
               "journal_id")


class StatementMismatch(RuntimeError):
    """The entries read do not add up to the ledger's running totals: nothing is published."""


@value_class
class Line:
    value_day: str
    booked_at: str
    kind: str  # payment | refund
    amount: int  # what the merchant is owed by this line: + for a payment, - for a refund (minor units)
    currency: str
    journal_id: str
    payment_id: str = ""
    merchant_order_no: str = ""
    refund_id: str = ""
    merchant_refund_no: str = ""
    channel: str = ""
    channel_transaction_id: str = ""


@value_class
class Statement:
    merchant_id: str
    merchant_name: str
    month: str
    currency: str
    lines: tuple[Line, ...]
    ledger_movement: int  # the payable account's movement over the month, from the running day totals
    generated_at: str

    @property
    def payments_total(self) -> int:
        return sum(line.amount for line in self.lines if line.kind == "payment")

    @property
    def refunds_total(self) -> int:
        return -sum(line.amount for line in self.lines if line.kind == "refund")

    @property
    def net(self) -> int:
        return self.payments_total - self.refunds_total

    def summary(self) -> dict[str, Any]:
        return {"object": "statement", "id": statement_id(self.merchant_id, self.month, self.currency),
                "merchant_id": self.merchant_id, "month": self.month, "currency": self.currency,
                "payments_count": sum(1 for line in self.lines if line.kind == "payment"),
                "payments_total": self.payments_total,
                "refunds_count": sum(1 for line in self.lines if line.kind == "refund"),
                "refunds_total": self.refunds_total, "net": self.net,
                "ledger_movement": self.ledger_movement, "fees": None, "generated_at": self.generated_at}


def statement_id(merchant_id: str, month: str, currency: str) -> str:
    return f"stmt_{merchant_id}_{month.replace('-', '')}_{currency}"


def parse_month(text: str, name: str = "month") -> date:
    try:
        first = datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        first = None
    if first is None or len(text) != 7:
        raise InvalidRequest(f"{name} must be a month as YYYY-MM", param=name)
    return first


def days_of(month: str) -> list[str]:
    first = parse_month(month)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return [(first + timedelta(days=n)).isoformat() for n in range((following - first).days)]


def previous_month(now: datetime) -> str:
    today = now.astimezone(BEIJING).date()
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def _entries(account: str, day: str) -> list[dict[str, Any]]:
    """The account's entries value-dated to ``day``: every shard, plus the pre-sharding key."""
    dynamodb = client("dynamodb")
    found: list[dict[str, Any]] = []
    keys = [ledger_repo.value_key(account, day, shard) for shard in shards.all_shards(shards.counts().ledger)]
    for key in [*keys, f"{account}#{day}"]:
        for page in dynamodb.get_paginator("query").paginate(
            TableName=state_repo.ledger_table(), IndexName="value_day", KeyConditionExpression="value_key = :k",
            ExpressionAttributeValues={":k": {"S": key}},
        ):
            found += [from_item(item) for item in page.get("Items", [])]
    return found


def _ledger_movement(account: str, days: list[str]) -> int:
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return sum(pool.map(lambda day: ledger_repo.day_movement(account, day), days))


def _describe(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Attempts and refunds the entries refer to, and the payments behind them, in batch reads."""
    refs = {entry["reference"] for entry in entries}
    found = {item["pk"]: item for item in state_repo.batch_get(
        [records.attempt_key(r) for r in refs if not r.startswith("re_")]
        + [records.refund_key(r) for r in refs if r.startswith("re_")])}
    payment_ids = {item["payment_id"] for item in found.values() if item.get("payment_id")}
    payments = {item["payment_id"]: item for item in state_repo.batch_get([records.payment_key(p) for p in payment_ids])}
    described: dict[str, dict[str, Any]] = {}
    for ref in refs:
        item = found.get(f"RE#{ref}") or found.get(f"ATT#{ref}") or {}
        described[ref] = {**item, "merchant_order_no": payments.get(item.get("payment_id", ""), {}).get(
            "merchant_order_no", "")}
    return described


def build(merchant: Merchant, month: str, currency: str) -> Statement:
    account = merchant_payable_account(merchant.merchant_id, currency)
    days = days_of(month)
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        per_day = list(pool.map(lambda day: (day, _entries(account, day)), days))
    entries = [(day, entry) for day, found in per_day for entry in found]
    described = _describe([entry for _, entry in entries])
    lines = []
    for day, entry in entries:
        ref = entry["reference"]
        about = described.get(ref, {})
        refund = entry["purpose"] == "refund_paid"
        lines.append(Line(
            value_day=day, booked_at=entry["sk"].split("#", 1)[0], kind="refund" if refund else "payment",
            amount=-int(entry["amount"]), currency=entry["currency"], journal_id=entry["journal_id"],
            payment_id=about.get("payment_id", ""), merchant_order_no=about.get("merchant_order_no", ""),
            refund_id=ref if refund else "", merchant_refund_no=about.get("merchant_refund_no", "") if refund else "",
            channel=about.get("channel", ""),
            channel_transaction_id=(about.get("channel_refund_id") if refund else about.get("channel_transaction_id")) or "",
        ))
    lines.sort(key=lambda line: (line.value_day, line.booked_at, line.journal_id))
    movement = _ledger_movement(account, days)
    statement = Statement(merchant.merchant_id, merchant.name, month, currency, tuple(lines), movement,
                          iso(utcnow()))
    # The payable account is credited (negative) when a payment is captured: the merchant's net is -movement.
    if statement.net != -movement:
        log.error("statement %s does not add up: lines %d, ledger %d", statement_id(merchant.merchant_id, month,
                  currency), statement.net, -movement,
                  extra=alert("statement_mismatch", merchant_id=merchant.merchant_id, month=month))
        raise StatementMismatch(f"lines net {statement.net} != ledger {-movement}")
    return statement


def _beijing(text: str) -> str:
    return parse_iso(text).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def to_csv(statement: Statement) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in statement.lines:
        writer.writerow([line.value_day, line.booked_at, line.kind, line.payment_id, line.merchant_order_no,
                         line.refund_id, line.merchant_refund_no, line.channel, line.channel_transaction_id,
                         line.amount, money(line.amount, line.currency).split()[0], line.currency, line.journal_id])
    summary = statement.summary()
    writer.writerow([])
    for name in ("payments_count", "payments_total", "refunds_count", "refunds_total", "net", "ledger_movement"):
        writer.writerow([f"# {name}", summary[name]])
    return ("\ufeff" + out.getvalue()).encode()


def to_pdf(statement: Statement) -> bytes:
    ccy = statement.currency
    summary = statement.summary()
    rows = [[_beijing(line.booked_at), "支付 payment" if line.kind == "payment" else "退款 refund",
             line.merchant_order_no, line.channel, line.channel_transaction_id or "—", money(line.amount, ccy)]
            for line in statement.lines]
    return render(Document(
        title=f"商户月度对账单 Monthly statement {statement.month}",
        subtitle=f"{statement.merchant_name} ({statement.merchant_id}) · {ccy} · {summary['id']}",
        created=parse_iso(statement.generated_at).replace(microsecond=0),
        parts=[Fields("汇总 Summary", [
            ("收款笔数 Payments", str(summary["payments_count"])),
            ("收款金额 Payments total", money(statement.payments_total, ccy)),
            ("退款笔数 Refunds", str(summary["refunds_count"])),
            ("退款金额 Refunds total", money(statement.refunds_total, ccy)),
            ("净额 Net", money(statement.net, ccy)),
            ("手续费 Fees", "见渠道对账单 in the channels' statements"),
            ("账期 Period", f"{statement.month} (北京时间 Beijing time, by value day)")]),
               Table("明细 Lines", ["记账时间 Booked", "类型 Type", "订单号 Order", "渠道 Channel",
                                   "渠道交易号 Channel txn", "金额 Amount"], rows,
                     widths=(30, 20, 50, 18, 58, 26), align=("L", "L", "L", "L", "L", "R"), font_pt=8),
               Note("本对账单由账本分录生成，净额与账本应付商户账户当月变动一致（精确到分）。The lines are the ledger's "
                    "entries on the merchant's payable account; their net equals the ledger's movement for the month.")],
        footer=f"payhub · {summary['id']}", subject=summary["id"], landscape=True))


def publish(statement: Statement) -> dict[str, Any]:
    """Store the three files, then announce them once. Returns the summary."""
    summary = statement.summary()
    merchant_id, month = statement.merchant_id, statement.month
    suffix = "" if statement.currency == "CNY" else f"-{statement.currency}"
    name = f"statement-{month}{suffix}"
    store.put(store.statement_key(merchant_id, month, f"{statement.currency}.csv"), to_csv(statement),
              "text/csv; charset=utf-8", filename=f"{name}.csv")
    store.put(store.statement_key(merchant_id, month, f"{statement.currency}.pdf"), to_pdf(statement),
              "application/pdf", filename=f"{name}.pdf")
    # JSON last: its presence is what says the statement is complete (the job and the API look for it).
    store.put(store.statement_key(merchant_id, month, f"{statement.currency}.json"),
              json.dumps(summary, ensure_ascii=False).encode(), "application/json", filename=f"{name}.json")
    from chalicelib.config.settings import settings

    data = {**summary, "url": f"{settings().public_base_url}/v1/statements/{month}?currency={statement.currency}"}
    tx = Transaction()
    event = outbox.add_event(tx, merchant_id=merchant_id, object_id=summary["id"], event_type=EVENT_TYPE,
                             data=data, now=iso(utcnow()))
    try:
        tx.commit()
    except TransactionConflict:
        log.info("statement %s was already announced", summary["id"])
        return summary
    outbox.publish_after_commit([event])
    return summary


def published(merchant_id: str, month: str, currency: str) -> dict[str, Any] | None:
    raw = store.get(store.statement_key(merchant_id, month, f"{currency}.json"))
    loaded: dict[str, Any] | None = json.loads(raw) if raw is not None else None
    return loaded


def currencies() -> tuple[str, ...]:
    """Currencies a statement is made in (``PAYHUB_STATEMENT_CURRENCIES``, default CNY): a statement is one
    currency's ledger account, and finding which accounts a merchant has would mean reading every currency's
    shards, so the stage says which it takes. A currency with no movement in the month gets no statement."""
    import os

    from chalicelib.domain.money import SUPPORTED_CURRENCIES

    chosen = tuple(c.strip() for c in os.environ.get("PAYHUB_STATEMENT_CURRENCIES", "CNY").split(",") if c.strip())
    unknown = [c for c in chosen if c not in SUPPORTED_CURRENCIES]
    if unknown:
        raise ValueError(f"PAYHUB_STATEMENT_CURRENCIES names unsupported currencies {unknown}")
    return chosen


def run_month(merchants: Iterator[Merchant] | list[Merchant], month: str, currencies: tuple[str, ...],
              *, deadline: datetime | None = None) -> list[dict[str, Any]]:
    """Publish every missing statement of ``month``; stops at ``deadline`` (the next run goes on)."""
    done: list[dict[str, Any]] = []
    for merchant in merchants:
        for currency in currencies:
            if deadline and utcnow() >= deadline:
                return done
            if published(merchant.merchant_id, month, currency) is not None:
                continue
            statement = build(merchant, month, currency)
            if not statement.lines:
                continue
            done.append(publish(statement))
    return done
