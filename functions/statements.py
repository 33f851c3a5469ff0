"""Scheduled once a day: publishes the previous Beijing month's statement of every merchant that has none yet.

Daily rather than monthly so that a run that failed or ran out of time (many merchants) is simply continued the
next day; a published statement is never made again (its JSON summary in S3 marks it done). ``{"month":
"YYYY-MM"}`` in the event makes a given month (an operator's re-run).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from chalicelib.bills import statements
from chalicelib.domain.clock import utcnow
from chalicelib.observability import configure_logging
from chalicelib.storage import config_repo
from functions import imported

configure_logging()
log = logging.getLogger(__name__)
TIME_BUDGET_S = 12 * 60  # of the function's 15 minutes: stop starting statements, leave time to finish one


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    month = event.get("month") or statements.previous_month(utcnow())
    statements.parse_month(month)
    deadline = utcnow() + timedelta(seconds=TIME_BUDGET_S)
    merchants = [m for m in config_repo.list_merchants() if m.status == "active"]
    done = statements.run_month(merchants, month, statements.currencies(), deadline=deadline)
    log.info("statements of %s: %d published", month, len(done))
    return {"month": month, "published": [summary["id"] for summary in done]}


imported()
