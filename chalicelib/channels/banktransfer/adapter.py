"""``BankTransferAdapter``: the channel seam over the reserve's own bank (chalicelib/banks), not over a channel.

Nothing here speaks to a payment channel. ``create`` opens a virtual sub-account at the bank of the reserve named by
the channel account's ``reserve_id`` setting; the money arrives as credits on the reserve's statement, which the
transfers sweep reads and matches (chalicelib/service/transfers_in.py); ``query`` answers from what was received.
Refunds are transfers out of the reserve back to the account that paid, idempotent per refund (the bank answers
a resend under the same reference with the first transfer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

from chalicelib.banks.base import BankAccountRef, BankAdapter, Transfer, TransferState, TransferStatus
from chalicelib.channels.base import (
    CallbackReply,
    ClientAction,
    ConfirmRequest,
    ConfirmResult,
    CreateRequest,
    CreateResult,
    InboundCallback,
    Notification,
    PaymentStatus,
    RefundOutcome,
    RefundRequest,
    RefundStatus,
    StatementRow,
    StatementSummary,
    Transport,
)
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import CallbackRejected, ChannelError, InvalidState
from chalicelib.domain.money import Money
from chalicelib.service import transfers_in

_REFUND_STATES = {TransferState.PROCESSING: RefundOutcome.PROCESSING, TransferState.SUCCEEDED: RefundOutcome.SUCCEEDED,
                  # failed before leaving, or left and came back: no money reached the payer
                  TransferState.FAILED: RefundOutcome.FAILED, TransferState.RETURNED: RefundOutcome.FAILED}


def _default_bank(reserve_id: str) -> tuple[BankAdapter, BankAccountRef]:
    from chalicelib.banks.accounts import bank_for

    return bank_for(reserve_id)


class BankTransferAdapter:
    channel = "banktransfer"
    methods = frozenset({"bank.transfer"})
    confirm_methods: frozenset[str] = frozenset()

    def __init__(self, transport: Transport, *,
                 bank: Callable[[str], tuple[BankAdapter, BankAccountRef]] = _default_bank) -> None:
        self._transport = transport  # unused: the bank adapter has its own (shared) transport
        self._bank = bank

    @staticmethod
    def _reserve(account: ChannelAccount) -> str:
        reserve_id = account.config.settings.get("reserve_id")
        if not reserve_id:
            raise ChannelError(f"channel account {account.config.account_id} names no reserve_id",
                               channel_code="NO_RESERVE", refused=True)
        return reserve_id

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult:
        if request.amount.currency != "CNY":
            raise ChannelError("bank transfers are taken in CNY only", channel_code="CURRENCY", refused=True)
        reserve_id = self._reserve(account)
        order = transfers_in.open_order(request.attempt_id, reserve_id, self._bank(reserve_id),
                                        name=request.description or request.attempt_id,
                                        bank_name=account.config.settings.get("bank_name", ""),
                                        expires_at=request.expires_at)
        params = {k: v for k, v in transfers_in.payer_action(order).items() if k != "type"}
        return CreateResult(channel_order_ref=str(order["account_no"]), action=ClientAction("bank_transfer", params))

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        return transfers_in.order_status(attempt_id, amount)

    def close(self, account: ChannelAccount, attempt_id: str, *, channel_order_ref: str | None = None) -> None:
        transfers_in.close_order(attempt_id)

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus:
        reserve_id = self._reserve(account)
        bank, ref = self._bank(reserve_id)
        payee_account_no, payee_name = transfers_in.refund_payee(request.attempt_id)
        reference = transfers_in.refund_reference(request.refund_id)
        try:
            status = bank.submit_transfer(ref, Transfer(
                reference=reference, amount=request.amount, payee_account_no=payee_account_no, payee_name=payee_name,
                purpose=f"退款 {(request.reason or '')}"[:30].strip()))
        except ChannelError as exc:
            if exc.channel_code != "ERR_DUPREF":
                raise
            status = bank.transfer_status(ref, reference)  # sent before under this refund: where it stands
        return self._refund_status(status, request.amount)

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        bank, ref = self._bank(self._reserve(account))
        try:
            status = bank.transfer_status(ref, transfers_in.refund_reference(refund_id))
        except ChannelError as exc:
            if exc.channel_code == "NOT_FOUND":
                return RefundStatus(outcome=RefundOutcome.NOT_FOUND, raw_status="NOT_FOUND")
            raise
        return self._refund_status(status, amount)

    @staticmethod
    def _refund_status(status: TransferStatus, amount: Money) -> RefundStatus:
        return RefundStatus(outcome=_REFUND_STATES[status.state], raw_status=str(status.state).upper(),
                            channel_refund_id=status.bank_reference or status.reference, amount=amount)

    def confirm(self, account: ChannelAccount, request: ConfirmRequest) -> ConfirmResult:
        raise InvalidState("a bank transfer has no confirmation step", param="method")

    def verify_and_parse_notification(self, account: ChannelAccount,
                                      callback: InboundCallback) -> Notification | Sequence[Notification]:
        # The bank calls nobody: credits are read from the reserve's statement. Anything posted here is not it.
        raise CallbackRejected("bank transfers have no callbacks: credits are read from the reserve's statement")

    def acknowledge(self, ok: bool) -> CallbackReply:
        return CallbackReply(status=200 if ok else 400)

    def fetch_statement(self, account: ChannelAccount, day: str) -> Iterable[bytes]:
        # The reserve's bank statement is this channel's statement: every credit on it is matched by the transfers
        # sweep as it arrives, and the reserve's daily reconciliation checks the day against the ledger.
        raise ChannelError("bank transfers have no channel statement: the reserve's bank statement is reconciled "
                           "instead", channel_code="NO_STATEMENT", refused=True)

    def parse_statement(self, account: ChannelAccount,
                        chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        raise ChannelError("bank transfers have no channel statement", channel_code="NO_STATEMENT", refused=True)
