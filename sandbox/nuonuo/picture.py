"""``python -m sandbox.nuonuo.picture OUT.png [--red]``: draw a sample issued invoice (the sandbox's renderer, the
hub's rounding rule) and rasterise its page with pypdfium2, for docs/images/."""

from __future__ import annotations

import argparse
from decimal import Decimal

from chalicelib.invoices import amounts

from . import pdf


def sample(red: bool) -> dict[str, object]:
    items = [("*茶*明前龙井 250g", "1030201010000000000", "0.13", 6000),
             ("*餐饮服务*茶位费", "3070401000000000000", "0.06", 2888)]
    sign = -1 if red else 1
    lines = []
    for name, code, rate, fen in items:
        part = fen if not red else (1000 if rate == "0.13" else 0)
        if not part:
            continue
        made = amounts.line(part, Decimal(rate))
        lines.append({"name": name, "code": code, "rate_text": f"{int(Decimal(rate) * 100)}%",
                      "amount": amounts.yuan(sign * made.amount), "tax": amounts.yuan(sign * made.tax),
                      "without_tax": amounts.yuan(sign * made.without_tax)})
    total = sum(amounts.fen(str(line["amount"])) for line in lines)
    tax = sum(amounts.fen(str(line["tax"])) for line in lines)
    return {
        "invoice_line": "bs", "red": red, "lines": lines, "invoice_no": "26442000000123456789" if not red
        else "26442000000123459999", "invoice_date": "2026-12-06 20:30:00", "check_code": "48201937465019283746",
        "blue_invoice_no": "26442000000123456789", "red_form_no": "20261206000000001234",
        "total": amounts.yuan(total), "total_tax": amounts.yuan(tax), "total_without_tax": amounts.yuan(total - tax),
        "buyer": {"name": "深圳市腾讯计算机系统有限公司", "tax_no": "9144030071526726XG",
                  "address": "深圳市南山区粤海街道 0755-86013388", "account": "招商银行深圳分行 755900000000"},
        "seller": {"name": "福州茶舍有限公司", "tax_no": "91350100M000100Y43",
                   "address": "福州市鼓楼区五四路 88 号 0591-88888888",
                   "account": "中国工商银行福州分行 1402000000000000000"},
        "drawer": "林晓", "order_no": "PHQ2K7ZKX4M5D3VJ6W8A",
    }


def main() -> None:
    import pypdfium2

    parser = argparse.ArgumentParser(prog="python -m sandbox.nuonuo.picture")
    parser.add_argument("out")
    parser.add_argument("--red", action="store_true")
    args = parser.parse_args()
    document = pypdfium2.PdfDocument(pdf.render(sample(args.red)))
    document[0].render(scale=2.5).to_pil().save(args.out)


if __name__ == "__main__":
    main()
