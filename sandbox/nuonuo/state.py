"""What the sandbox provider knows: registered apps (one per seller tax number), orders and the invoices issued
for them, red-letter confirmation forms, and the faults a test asked for. One lock guards it all."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

# Invoice states of queryInvoiceResult (``status``): 20 开票中, 2 开票完成, 22 开票失败.
ISSUING, ISSUED, FAILED = "20", "2", "22"
# Red confirmation form states (``billStatus``): 01 无需确认, 02 销方录入待购方确认, 04 购销双方已确认.
FORM_NO_CONFIRMATION, FORM_AWAITING_BUYER, FORM_CONFIRMED = "01", "02", "04"


@dataclass
class App:
    app_key: str
    app_secret: str
    access_token: str
    tax_no: str


@dataclass
class Order:
    order_no: str
    serial_no: str
    tax_no: str
    request: dict[str, Any]
    status: str = ISSUING
    fail_cause: str = ""
    invoice: dict[str, Any] | None = None  # the issued invoice (number, date, amounts, lines...)
    pdf: bytes = b""
    callback_url: str = ""
    red: bool = False  # a red invoice, issued by the bureau for a confirmation form
    bill_id: str = ""  # its form


@dataclass
class RedForm:
    bill_id: str
    bill_no: str
    tax_no: str
    request: dict[str, Any]
    blue: Order
    status: str
    red_serial: str = ""


@dataclass
class Faults:
    """Each is consumed by the next matching request."""

    refuse: list[str] = field(default_factory=list)  # the bureau refuses the next invoices (async, status 22)
    refuse_at_once: list[str] = field(default_factory=list)  # the gateway refuses the next request (a code)
    delay_s: list[float] = field(default_factory=list)  # the next invoices stay 开票中 this long
    lose_answer: int = 0  # the next requests are carried out, then answered with a 502
    red_needs_buyer: int = 0  # the next red forms wait for the buyer's confirmation
    no_callback: int = 0  # the next issued invoices are not pushed to their callBackUrl


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.apps: dict[str, App] = {}
        self.orders: dict[str, Order] = {}  # by (tax_no, order_no) joined with "|"
        self.by_serial: dict[str, Order] = {}
        self.forms: dict[str, RedForm] = {}  # by (tax_no, bill_id)
        self._faults: dict[str, Faults] = {}  # by seller tax number: each seller's faults are its own
        self.billing_requests: list[str] = []  # every requestBillingNew orderNo received, accepted or not

    def faults(self, tax_no: str) -> Faults:
        with self.lock:
            return self._faults.setdefault(tax_no, Faults())

    def register(self, tax_no: str) -> App:
        with self.lock:
            app = App(secrets.token_hex(8), secrets.token_urlsafe(24), secrets.token_hex(16), tax_no)
            self.apps[app.app_key] = app
            return app

    def issued(self) -> list[dict[str, Any]]:
        """Every invoice this provider issued, blue and red: the books a test judges the hub by."""
        with self.lock:
            return [{**order.invoice, "order_no": order.order_no, "serial_no": order.serial_no, "red": order.red,
                     "tax_no": order.tax_no} for order in self.orders.values()
                    if order.status == ISSUED and order.invoice]
