"""CloudWatch figures of each run; the stack alarms on them (infra/recon_stack.py, infra/alerting.py).

Published as embedded metric format through ``chalicelib.observability``: one log line, no API call (a
``PutMetricData`` that could fail or stall after the run's outcome was stored, and needed its own IAM grant).

``Runs`` (1 per finished run), ``UnresolvedDifferences`` (items needing a person, waiting or to retry) and
``FailedRuns`` carry the dimension ``Stage`` (what the alarms watch) and again ``Stage`` + ``Account`` (for
drilling down in the console).
"""

from __future__ import annotations

from chalicelib.observability import emit, stage

NAMESPACE = "PayHub/Recon"
RUNS = "Runs"
UNRESOLVED = "UnresolvedDifferences"
FAILED = "FailedRuns"


def publish_run(account_id: str, *, unresolved: int, failed: bool) -> None:
    """One finished run (stored already): counted, with its unresolved differences or its failure."""
    metrics = {RUNS: (1, "Count"), FAILED: (1 if failed else 0, "Count")}
    if not failed:
        metrics[UNRESOLVED] = (unresolved, "Count")
    emit(NAMESPACE, metrics, [["Stage"], ["Stage", "Account"]],
         {"Stage": stage(), "Account": account_id})
