"""A run's report files: a CSV of its differences and an HTML summary with totals and a chart.

Plain standard library: ``csv`` for the differences, an HTML page whose chart is inline SVG (bars per
difference kind, split by status), no scripts and no external resources, so it opens anywhere, offline.
Both are rendered from the stored run and items, so re-running a day renders the same files.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from chalicelib.domain.money import Money
from chalicelib.recon.repairs import ItemStatus

CSV_COLUMNS = ("run_id", "account_id", "day", "kind", "object_kind", "object_id", "status", "amount", "currency",
               "occurred_at", "reasons", "action")
STATUS_COLORS = {ItemStatus.REPAIRED: "#2e7d32", ItemStatus.RESOLVED: "#78909c", ItemStatus.WAITING: "#f9a825",
                 ItemStatus.RETRY: "#ef6c00", ItemStatus.NEEDS_REVIEW: "#c62828"}


def _amount(item: Mapping[str, Any]) -> str:
    if item.get("amount_minor") is None:
        return ""
    return Money(int(item["amount_minor"]), str(item["currency"])).to_decimal_string()


def _reasons(item: Mapping[str, Any]) -> str:
    return "; ".join(f"{r['field']}: hub {r.get('hub') or '-'} / channel {r.get('channel') or '-'}"
                     for r in item.get("reasons") or [])


def differences_csv(items: Sequence[Mapping[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        writer.writerow([item.get("run_id", ""), item.get("account_id", ""), item.get("day", ""), item["kind"],
                         item.get("object_kind", ""), item.get("object_id", ""), item["status"], _amount(item),
                         item.get("currency") or "", item.get("occurred_at") or "", _reasons(item),
                         item.get("action") or ""])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # BOM: spreadsheet programs then read it as UTF-8


def _chart(items: Sequence[Mapping[str, Any]]) -> str:
    """Horizontal stacked bars: one per difference kind, a segment per status."""
    counts = Counter((str(item["kind"]), str(item["status"])) for item in items)
    kinds = sorted({kind for kind, _ in counts})
    if not kinds:
        return '<p class="none">No differences.</p>'
    widest = max(sum(counts[(kind, s)] for s in ItemStatus) for kind in kinds)
    bar_h, label_w, plot_w = 26, 150, 420
    height = bar_h * len(kinds) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 60}" height="{height}" '
             f'role="img" aria-label="differences by kind and status">']
    for row, kind in enumerate(kinds):
        y, x = 10 + row * bar_h, label_w
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(kind)}</text>')
        for status in ItemStatus:
            count = counts[(kind, status)]
            if count:
                width = max(1, round(plot_w * count / widest))
                parts.append(f'<rect x="{x}" y="{y + 3}" width="{width}" height="{bar_h - 8}" '
                             f'fill="{STATUS_COLORS[status]}"><title>{escape(kind)} {status}: {count}</title></rect>')
                x += width
        parts.append(f'<text x="{x + 6}" y="{y + 16}">{sum(counts[(kind, s)] for s in ItemStatus)}</text>')
    legend_y = 10 + len(kinds) * bar_h + 18
    for n, status in enumerate(ItemStatus):
        parts.append(f'<rect x="{label_w + n * 95}" y="{legend_y - 10}" width="12" height="12" '
                     f'fill="{STATUS_COLORS[status]}"/><text x="{label_w + n * 95 + 16}" y="{legend_y}">{status}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _totals_rows(run: Mapping[str, Any]) -> str:
    totals = run.get("totals") or {}
    rows = [("statement rows", totals.get("statement_rows")), ("hub records", totals.get("hub_records")),
            ("matched", totals.get("matched")), ("differences", totals.get("items")),
            ("unresolved", run.get("unresolved"))]
    for currency, values in sorted((totals.get("by_currency") or {}).items()):
        for name in ("statement_payments", "statement_refunds", "statement_settled", "ledger_clearing"):
            if name in values:
                rows.append((f"{name.replace('_', ' ')} ({currency})",
                             Money(int(values[name]), currency).to_decimal_string()))
    return "".join(f"<tr><th>{escape(name)}</th><td>{escape(str(value if value is not None else '-'))}</td></tr>"
                   for name, value in rows)


def summary_html(run: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> bytes:
    statement = run.get("statement") or {}
    item_rows = "".join(
        "<tr>" + "".join(f"<td>{escape(str(value))}</td>" for value in (
            item["kind"], item.get("object_id", ""), item["status"], _amount(item), item.get("currency") or "",
            _reasons(item), item.get("action") or "")) + "</tr>"
        for item in items)
    title = f"Reconciliation {run.get('account_id', '')} {run.get('day', '')}"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}th{{background:#f5f5f5}}
svg text{{font:12px system-ui,sans-serif}}.none{{color:#2e7d32}}</style></head>
<body><h1>{escape(title)}</h1>
<p>Run <code>{escape(str(run.get('run_id', '')))}</code>, channel {escape(str(run.get('channel', '')))},
status <strong>{escape(str(run.get('status', '')))}</strong>, finished {escape(str(run.get('finished_at', '')))}.
Statement <code>{escape(str(statement.get('key', '')))}</code> (SHA-256 {escape(str(statement.get('sha256', '')))},
{escape(str(statement.get('size_bytes', '')))} bytes).</p>
<h2>Totals</h2><table>{_totals_rows(run)}</table>
<h2>Differences by kind and status</h2>{_chart(items)}
<h2>Differences</h2><table><tr><th>kind</th><th>object</th><th>status</th><th>amount</th><th>currency</th>
<th>reasons</th><th>action</th></tr>{item_rows}</table>
</body></html>
"""
    return page.encode("utf-8")
