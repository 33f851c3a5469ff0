"""CloudWatch figures of each run; the stack alarms on them (infra/stack.py).

``UnresolvedDifferences`` (items needing a person, waiting or to retry) and ``FailedRuns`` are published
with the dimension ``Stage`` (what the alarms watch) and again with ``Stage`` + ``Account`` (for drilling
down in the console).
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config.settings import settings
from chalicelib.storage.aws import client

log = logging.getLogger(__name__)
NAMESPACE = "PayHub/Recon"
UNRESOLVED = "UnresolvedDifferences"
FAILED = "FailedRuns"


def _datums(name: str, value: int, account_id: str) -> list[dict[str, object]]:
    stage = {"Name": "Stage", "Value": settings().stage}
    return [{"MetricName": name, "Value": value, "Unit": "Count", "Dimensions": [stage]},
            {"MetricName": name, "Value": value, "Unit": "Count",
             "Dimensions": [stage, {"Name": "Account", "Value": account_id}]}]


def publish_run(account_id: str, *, unresolved: int, failed: bool) -> None:
    """The run's outcome is already stored; a metric that cannot be sent is logged as an error, loudly."""
    data = _datums(UNRESOLVED, unresolved, account_id) if not failed else _datums(FAILED, 1, account_id)
    try:
        client("cloudwatch").put_metric_data(Namespace=NAMESPACE, MetricData=data)
    except (BotoCoreError, ClientError):
        log.exception("could not publish reconciliation metrics for %s", account_id,
                      extra={"alert": "recon_metric_failed", "account": account_id})
