"""The invoice document the provider hands out: a one-page PDF laid out like a 数电 invoice, made with fpdf2.

The font is Noto Sans SC from the ``justmytype-intl-cjk`` package (PyPI, SIL Open Font License): never a font of
the machine, so the sandbox draws the same page anywhere.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from fpdf import FPDF

TITLES = {"pc": "电子发票（普通发票）", "bs": "电子发票（增值税专用发票）"}


@functools.cache
def font_path() -> str:
    import justmytype_intl_cjk

    found = sorted(Path(justmytype_intl_cjk.__file__).parent.rglob("NotoSansSC*.ttf"))
    if not found:
        raise RuntimeError("justmytype-intl-cjk ships no Noto Sans SC font")
    return str(found[0])


def render(invoice: dict[str, Any]) -> bytes:
    """``invoice``: the sandbox's record (number, date, kind, seller, buyer, lines with yuan strings, totals)."""
    pdf = FPDF(orientation="L", unit="mm", format=(140, 240))
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.add_font("sc", fname=font_path())
    red = invoice["red"]
    colour = (176, 30, 30) if red else (120, 60, 30)
    pdf.set_text_color(*colour)
    pdf.set_draw_color(*colour)
    pdf.set_font("sc", size=16)
    pdf.set_xy(10, 8)
    title = TITLES[invoice["invoice_line"]] + ("（红字）" if red else "")
    pdf.cell(220, 9, title, align="C")
    pdf.set_font("sc", size=8)
    pdf.set_xy(160, 18)
    pdf.multi_cell(70, 4.5, f"发票号码：{invoice['invoice_no']}\n开票日期：{invoice['invoice_date']}\n"
                            f"校验码：{invoice['check_code']}")
    if red:
        pdf.set_xy(10, 18)
        pdf.multi_cell(140, 4.5, f"被红冲蓝字发票号码：{invoice['blue_invoice_no']}\n红字确认单编号：{invoice['red_form_no']}")
    pdf.rect(10, 32, 220, 96)
    _party(pdf, 10, "购买方", invoice["buyer"])
    _party(pdf, 120, "销售方", invoice["seller"])
    pdf.line(10, 56, 230, 56)
    headers = (("项目名称", 70), ("税收分类编码", 40), ("税率", 18), ("金额", 30), ("税额", 28), ("价税合计", 34))
    pdf.set_font("sc", size=8)
    x = 10.0
    for text, width in headers:
        pdf.set_xy(x, 57)
        pdf.cell(width, 6, text, align="C")
        x += width
    y = 64.0
    for item in invoice["lines"]:
        values = (item["name"], item["code"], item["rate_text"], item["without_tax"], item["tax"], item["amount"])
        x = 10.0
        for (_, width), value in zip(headers, values, strict=True):
            pdf.set_xy(x + 1, y)
            pdf.cell(width - 2, 5, str(value), align="L" if width >= 40 else "R")
            x += width
        y += 5.5
    pdf.line(10, 112, 230, 112)
    pdf.set_xy(12, 113)
    pdf.cell(60, 6, "合计")
    pdf.set_xy(139, 113)  # under 金额, 税额 and 价税合计 (the columns start at 138, 168 and 196)
    pdf.cell(28, 6, f"¥{invoice['total_without_tax']}", align="R")
    pdf.set_xy(169, 113)
    pdf.cell(26, 6, f"¥{invoice['total_tax']}", align="R")
    pdf.set_xy(197, 113)
    pdf.cell(32, 6, f"¥{invoice['total']}", align="R")
    pdf.set_xy(12, 120)
    pdf.cell(200, 6, f"价税合计（小写）  ¥{invoice['total']}")
    pdf.set_xy(10, 129)
    pdf.cell(220, 6, f"开票人：{invoice['drawer']}    订单号：{invoice['order_no']}    （诺诺沙箱，非真实发票）")
    return bytes(pdf.output())


def _party(pdf: FPDF, x: float, role: str, party: dict[str, str]) -> None:
    pdf.set_font("sc", size=8)
    pdf.set_xy(x + 2, 33)
    text = (f"{role}  名称：{party['name']}\n统一社会信用代码/纳税人识别号：{party.get('tax_no') or ''}\n"
            f"地址电话：{party.get('address') or ''}\n开户行及账号：{party.get('account') or ''}")
    pdf.multi_cell(106, 5, text)
