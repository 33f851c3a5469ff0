"""Daily archival of settled records (chalicelib/retention/sweep.py), one scan segment per scheduled target."""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.observability import configure_logging, emit, stage
from chalicelib.retention import policy, sweep
from chalicelib.storage import state_repo
from functions import imported

configure_logging()
log = logging.getLogger(__name__)
MARGIN_S = 60.0  # stop this long before the Lambda timeout: the cursor must be written


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    segment, segments = int(event.get("segment", 0)), int(event.get("segments", 1))
    if not 0 <= segment < segments:
        raise ValueError(f"segment {segment} is not within 0..{segments - 1}")
    remaining_s = context.get_remaining_time_in_millis() / 1000 if context is not None else 900.0
    result = sweep.run(state_repo.state_table(), policy.current(), segment=segment, segments=segments,
                       budget_s=max(remaining_s - MARGIN_S, 1.0))
    archived = dict(result.archived)
    emit("PayHub/Retention", {"ArchivedRecords": (sum(archived.values()), "Count"),
                              "ScannedRecords": (result.scanned, "Count")}, [["Stage"]],
         {"Stage": stage(), "segment": segment, "archived_by_kind": archived})
    log.info("archive sweep segment %d/%d: scanned %d, archived %s, %d changed meanwhile, pass %s", segment,
             segments, result.scanned, archived, result.kept_changed,
             "finished" if result.finished_pass else "continues tomorrow")
    return {"scanned": result.scanned, "archived": archived, "kept_changed": result.kept_changed,
            "finished_pass": result.finished_pass}


imported()
