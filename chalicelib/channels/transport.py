"""The shared outbound HTTP transport: urllib3 (already present via botocore), pooled, TLS 1.2+.

Certificates are always verified (system trust store, host name checked). Stripe and PayPal do not sign their
API answers: TLS to their host is what authenticates them, so plain ``http`` is refused for any host but a
loopback address (the local sandboxes); a misconfigured ``api_base_url`` fails closed instead of trusting
whatever answers on the path.

Errors never echo request headers, bodies or queries: they carry signatures, payer data and, for WeChat's web
authorisation, the AppSecret. One log line per call with method, path, status and elapsed time, and nothing else
from the request; urllib3's own lines (a retried connect logs its URL at WARNING) have their queries redacted
(``log_redaction``), and a failure's error keeps no urllib3 exception (whose message is the whole URL).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import ssl
import time
from collections.abc import Iterator
from contextvars import ContextVar
from urllib.parse import urlsplit

import urllib3
from urllib3.util.retry import Retry

from chalicelib.channels import log_redaction
from chalicelib.channels.base import HttpRequest, HttpResponse
from chalicelib.domain.errors import ChannelError

logger = logging.getLogger(__name__)
log_redaction.install()  # again, in case urllib3 made a logger after log_redaction was first imported

# Only failed connects are retried here: the request never left, so even a POST is safe to resend.
# Anything after the request was sent is the caller's decision (it knows whether the call is idempotent).
_CONNECT_RETRIES = Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0, raise_on_status=False)

# A caller that must decide quickly (a create that may fail over to a backup account, inside one API request)
# caps every channel call made under it; the clients' own timeouts apply when nothing is capped.
_timeout_cap_s: ContextVar[float | None] = ContextVar("channel_timeout_cap_s", default=None)


@contextlib.contextmanager
def timeout_cap(seconds: float) -> Iterator[None]:
    token = _timeout_cap_s.set(seconds)
    try:
        yield
    finally:
        _timeout_cap_s.reset(token)


class UrllibTransport:
    """``Transport`` over a urllib3 ``PoolManager``; one instance per process (Lambda container)."""

    def __init__(self, *, connect_timeout_s: float = 3.0, pool_maxsize: int = 10, num_pools: int = 20) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._pool = urllib3.PoolManager(
            num_pools=num_pools,
            maxsize=pool_maxsize,
            retries=_CONNECT_RETRIES,
            ssl_minimum_version=ssl.TLSVersion.TLSv1_2,
            cert_reqs="CERT_REQUIRED",
        )

    def send(self, request: HttpRequest, *, timeout_s: float = 10.0) -> HttpResponse:
        parts = urlsplit(request.url)
        # Log the path only: queries can carry merchant ids and bill tokens.
        target = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if not (parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))):
            raise ChannelError(f"{request.method} {target} refused: channels are reached over https only "
                               "(plain http to a loopback sandbox excepted)", channel_code="INSECURE_URL")
        cap = _timeout_cap_s.get()
        if cap is not None:
            timeout_s = min(timeout_s, cap)
        timeout = urllib3.Timeout(connect=min(self._connect_timeout_s, timeout_s), read=timeout_s, total=timeout_s)
        started = time.monotonic()
        failure: str | None = None
        try:
            raw = self._pool.request(
                request.method,
                request.url,
                body=request.body or None,
                headers=dict(request.headers),
                timeout=timeout,
                redirect=False,  # a redirect would carry our Authorization header to another URL
                preload_content=True,
            )
        except urllib3.exceptions.HTTPError as exc:
            failure = _failure_name(exc)
        if failure is not None:
            elapsed_ms = int((time.monotonic() - started) * 1000)
            self._log(request.method, parts.path, None, elapsed_ms, error=failure)
            # Raised outside the except block, so the urllib3 exception is neither __cause__ nor __context__: its
            # message holds the whole URL, query included (a WeChat AppSecret, bill tokens), and would be printed
            # by any traceback of this error. The failure's class names are what is kept of it.
            raise ChannelError(f"{request.method} {target} failed: {failure}", retryable=True)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        self._log(request.method, parts.path, raw.status, elapsed_ms)
        headers = {name.lower(): value for name, value in raw.headers.items()}
        return HttpResponse(status=raw.status, headers=headers, body=raw.data)

    @staticmethod
    def _log(method: str, path: str, status: int | None, elapsed_ms: int, error: str | None = None) -> None:
        fields = {"http_method": method, "url_path": path, "http_status": status, "elapsed_ms": elapsed_ms}
        if error:
            fields["error"] = error
        logger.info(
            "channel_http method=%s path=%s status=%s elapsed_ms=%d%s",
            method, path, status, elapsed_ms, f" error={error}" if error else "",
            extra=fields,
        )

    def close(self) -> None:
        self._pool.clear()


def _failure_name(exc: BaseException) -> str:
    """``MaxRetryError (NewConnectionError)``: the failure and, for a retried one, what broke the last try."""
    reason = getattr(exc, "reason", None)
    return f"{type(exc).__name__} ({type(reason).__name__})" if isinstance(reason, BaseException) \
        else type(exc).__name__


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
