"""Signed, encrypted calls to CMB's direct-connect endpoint through the shared ``Transport``.

One call: the document ``{"request": {"head", "body"}}`` is signed and sealed (envelope.py) and posted as the
form ``UID, FUNCODE, ALG=SM, DATA``. The answer is the sealed, signed ``{"response": {"head", "body"}}``; it
is believed only when it decrypts under our SM4 key, carries the bank's valid signature, and its head echoes
our funcode, user id and reqid (a signed answer to another request is a replay). Anything else is a
``ChannelError`` and a warning in the log, with no part of the answer beyond a short reason.

The service's own refusals before any decryption (a UID not on the list, a source address not allowed) come
back as plain text ``CDCServer: ... ErrMsg: ...``: unsigned, so their words are not acted upon.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import urlencode

from chalicelib.banks.accounts import BankAccount
from chalicelib.banks.cmb import envelope
from chalicelib.banks.cmb.messages import BEIJING, SUCCESS
from chalicelib.channels.base import HttpRequest, Transport
from chalicelib.domain.errors import ChannelError

logger = logging.getLogger(__name__)
USER_AGENT = "payhub-cmb/1.0"
# Head result codes the sandbox (and this adapter) treat as "send again later": nothing was done.
RETRYABLE_CODES = frozenset({"ERR_SYSBUSY", "ERR_SIGTIM"})
# Definite refusals of the message: nothing was done at the bank.
REFUSAL_CODES = frozenset({"ERR_PARAM", "ERR_ACCOUNT", "ERR_FUNCODE"})
_MESSAGE_CHARS_MAX = 200


class CMBClient:
    def __init__(self, transport: Transport, clock: Callable[[], datetime], timeout_s: float = 15.0) -> None:
        self._transport = transport
        self._clock = clock
        self._timeout_s = timeout_s

    def call(self, account: BankAccount, funcode: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send one funcode; return the answer's ``body`` when the bank signed it and said SUC0000."""
        config, secrets = account.config, account.secrets
        now = self._clock().astimezone(BEIJING)
        reqid = envelope.new_reqid(now)
        document = {"request": {"head": {"funcode": funcode, "userid": config.uid, "reqid": reqid}, "body": body}}
        signed = envelope.sign(document, config.uid, secrets.our_private_key.reveal(), config.our_public_key,
                               envelope.sigtim(now))
        data = envelope.seal(signed, config.uid, secrets.sm4_key.reveal())
        form = urlencode({"UID": config.uid, "FUNCODE": funcode, "ALG": envelope.ALG_SM, "DATA": data})
        request = HttpRequest("POST", config.api_base_url, {
            "Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT,
        }, form.encode("ascii"))
        response = self._transport.send(request, timeout_s=self._timeout_s)
        if response.status >= 500 or response.status == 429:
            raise ChannelError(f"CMB {funcode}: HTTP {response.status}", retryable=True,
                               channel_code=f"HTTP_{response.status}")
        text = response.body.decode("utf-8", errors="replace")
        if "CDCServer:" in text and "ErrMsg:" in text:
            self._refuse(config.reserve_id, funcode, "the service refused the call in plain text (unsigned)",
                         "CDC_REFUSED")
        if response.status != 200:
            raise ChannelError(f"CMB {funcode}: HTTP {response.status}", channel_code=f"HTTP_{response.status}")
        try:
            answer = envelope.unseal(text, config.uid, secrets.sm4_key.reveal())
        except envelope.EnvelopeError as exc:
            self._refuse(config.reserve_id, funcode, f"answer unreadable: {exc}", "RESPONSE_UNREADABLE")
        if not envelope.verify(answer, config.uid, secrets.bank_public_key.reveal()):
            self._refuse(config.reserve_id, funcode, "answer is not signed by the bank's key",
                         "RESPONSE_SIGNATURE_INVALID")
        head, answer_body = _head_and_body(answer)
        if head is None:
            self._refuse(config.reserve_id, funcode, "answer has no response head", "RESPONSE_UNREADABLE")
        if (head.get("funcode"), head.get("userid"), head.get("reqid")) != (funcode, config.uid, reqid):
            self._refuse(config.reserve_id, funcode, "signed answer belongs to another request (replayed)",
                         "RESPONSE_NOT_OURS")
        code = head.get("resultcode")
        if code != SUCCESS:
            code_text = code if isinstance(code, str) and code else "NO_RESULTCODE"
            message = str(head.get("resultmsg") or "")[:_MESSAGE_CHARS_MAX]
            raise ChannelError(f"CMB {funcode} {code_text}: {message}", channel_code=code_text,
                               retryable=code_text in RETRYABLE_CODES, refused=code_text in REFUSAL_CODES)
        return answer_body

    @staticmethod
    def _refuse(reserve_id: str, funcode: str, reason: str, code: str) -> NoReturn:
        # Unverified: we cannot tell what the bank did, so the error is neither a refusal nor retryable.
        logger.warning("cmb answer refused reserve=%s funcode=%s: %s", reserve_id, funcode, reason,
                       extra={"event": "bank_answer_refused", "bank": "cmb", "reserve_id": reserve_id,
                              "funcode": funcode, "channel_code": code})
        raise ChannelError(f"CMB {funcode}: {reason}", channel_code=code)


def _head_and_body(answer: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    response = answer.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("head"), dict):
        return None, {}
    body = response.get("body")
    return response["head"], body if isinstance(body, dict) else {}
