"""DynamoDB stream consumer: publish the outbox events the state table's writes just committed.

The event source mapping (infra/stack.py) passes only INSERTs of outbox items; ``outbox.relay`` checks again.
Its answer is the first record not relayed, so Lambda retries from there (``ReportBatchItemFailures``).
"""

from __future__ import annotations

from typing import Any

from chalicelib.observability import configure_logging
from chalicelib.storage import outbox
from functions import imported

configure_logging()


def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    first_failed = outbox.relay(event.get("Records", []))
    return {"batchItemFailures": [{"itemIdentifier": first_failed}] if first_failed else []}


imported()
