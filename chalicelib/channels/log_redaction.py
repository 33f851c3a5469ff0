"""No query string reaches a log line from urllib3.

Some channel calls carry a secret in the URL's query (WeChat's web authorisation trades a code with
``secret=<AppSecret>`` in a GET, as WeChat specifies), others merchant ids or bill tokens. urllib3 logs the whole
URL in several places: at WARNING when it retries a broken connection ("Retrying (...) after connection broken by
...: /path?query"), at DEBUG for every request and redirect. Observability keeps urllib3 at WARNING, which is exactly
the retry line. A filter on each of urllib3's loggers rewrites the record before any handler sees it: every query is
replaced by ``?<redacted>``. A logger filter only sees records logged on that very logger (not its children's), so it
goes on every urllib3 logger, including ones created later under the names urllib3 uses.
"""

from __future__ import annotations

import logging
import re

# A "?" directly followed by query text, up to whitespace or a quote (how a URL ends inside urllib3's messages and
# an exception's repr; a valid URL holds neither). A lone "?" in prose (followed by a space) is left alone.
_QUERY = re.compile(r"\?[^\s'\"]+")
REDACTED = "?<redacted>"
# urllib3 2.x's module loggers; the scan in install() adds any other one already created.
URLLIB3_LOGGERS = ("urllib3", "urllib3.connectionpool", "urllib3.poolmanager", "urllib3.connection",
                   "urllib3.response", "urllib3.util.retry", "urllib3.util.ssl_", "urllib3.contrib.pyopenssl")


def redact_queries(text: str) -> str:
    return _QUERY.sub(REDACTED, text)


class QueryRedactingFilter(logging.Filter):
    """Rewrites the record's message with every query string redacted; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: keep only its template, never its arguments
            message = str(record.msg)
        redacted = redact_queries(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, ()
        if record.exc_info and record.exc_info[1] is not None:
            # The traceback text would print the exception's message (MaxRetryError holds the whole URL): keep the
            # redacted text of it instead, formatted here, and drop the exception object.
            record.exc_text = redact_queries(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_FILTER = QueryRedactingFilter()


def install() -> None:
    """Idempotent: puts the filter on every urllib3 logger."""
    names = set(URLLIB3_LOGGERS) | {name for name in logging.root.manager.loggerDict if name.startswith("urllib3")}
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


install()
