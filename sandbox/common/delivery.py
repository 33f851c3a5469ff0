"""Background delivery of channel callbacks, with the channel's retry schedule and a record of every attempt.

A callback is a *job*; each attempt calls ``job.prepare(attempt_no)`` so headers are signed at send time
(a retry hours later with the first attempt's timestamp would be stale). 2xx (or the job's own ``accept``
rule) means delivered; anything else, including a connection error, is retried after
``schedule_s[n] * retry_scale`` until the schedule runs out.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_log = logging.getLogger("sandbox.delivery")

Prepare = Callable[[int], tuple[bytes, dict[str, str]]]
_ANSWER_BYTES_MAX = 1024  # enough to judge an acknowledgement; a receiver cannot make us buffer more


@dataclass(slots=True)
class DeliveryJob:
    event_id: str
    url: str
    prepare: Prepare
    labels: Mapping[str, str] = field(default_factory=dict)  # copied into every attempt record
    first_delay_s: float = 0.0
    # Jobs released once this job's first attempt has finished (used to force an ordering of callbacks).
    then: list[DeliveryJob] = field(default_factory=list)
    delivery_id: str = ""
    # Channels that judge the answer by its body (Alipay wants exactly ``success``): (status, body) -> delivered.
    # None keeps the default rule, any 2xx.
    accept: Callable[[int, bytes], bool] | None = None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    delivery_id: str
    event_id: str
    url: str
    attempt: int
    delivered: bool
    status_code: int | None
    error: str | None
    sent_at: str
    duration_ms: int
    labels: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id, "event_id": self.event_id, "url": self.url,
            "attempt": self.attempt, "delivered": self.delivered, "status_code": self.status_code,
            "error": self.error, "sent_at": self.sent_at, "duration_ms": self.duration_ms, **self.labels,
        }


class Deliverer:
    """One scheduler thread plus a small pool that does the POSTs (so copies can arrive concurrently)."""

    def __init__(self, schedule_s: tuple[float, ...], retry_scale: float, timeout_s: float = 5.0) -> None:
        self._schedule_s = schedule_s
        self._retry_scale = retry_scale
        self._timeout_s = timeout_s  # WeChat gives a merchant 5 s to answer
        self._due: list[tuple[float, int, DeliveryJob, int]] = []
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._cv = threading.Condition()
        self._attempts: list[DeliveryAttempt] = []
        self._suppressed: list[dict[str, Any]] = []
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sandbox-callback")
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sandbox-delivery", daemon=True)
        self._thread.start()

    @property
    def max_attempts(self) -> int:
        return 1 + len(self._schedule_s)

    def submit(self, job: DeliveryJob) -> str:
        with self._cv:
            job.delivery_id = f"D-{next(self._ids):06d}"
            self._push(job, attempt_no=1, delay_s=job.first_delay_s)
        return job.delivery_id

    def record_suppressed(self, event_id: str, url: str, labels: Mapping[str, str]) -> None:
        """Remember a callback that was deliberately never sent, so tests can see the fault fired."""
        with self._cv:
            self._suppressed.append({"event_id": event_id, "url": url, "suppressed": True, **labels})

    def attempts(self) -> list[DeliveryAttempt]:
        with self._cv:
            return list(self._attempts)

    def suppressed(self) -> list[dict[str, Any]]:
        with self._cv:
            return list(self._suppressed)

    def pending_count(self) -> int:
        with self._cv:
            return len(self._due)

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _push(self, job: DeliveryJob, attempt_no: int, delay_s: float) -> None:
        heapq.heappush(self._due, (time.monotonic() + delay_s, next(self._seq), job, attempt_no))
        self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._cv.wait(timeout)
                if self._stopping:
                    return
                _, _, job, attempt_no = heapq.heappop(self._due)
            self._pool.submit(self._attempt, job, attempt_no)

    def _attempt(self, job: DeliveryJob, attempt_no: int) -> None:
        started = time.monotonic()
        sent_at = datetime.now(UTC).isoformat()
        status_code: int | None = None
        error: str | None = None
        answer_body = b""
        try:
            if not job.url.startswith(("http://", "https://")):
                raise ValueError(f"notify URL must be http(s): {job.url!r}")
            body, headers = job.prepare(attempt_no)
            request = urllib.request.Request(job.url, data=body, headers=headers, method="POST")  # noqa: S310
            with urllib.request.urlopen(request, timeout=self._timeout_s) as answer:  # noqa: S310 - checked above
                status_code = answer.status
                answer_body = answer.read(_ANSWER_BYTES_MAX) if job.accept is not None else b""
        except urllib.error.HTTPError as exc:
            status_code = exc.code
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # Unreachable, refused, timed out or a malformed URL: all count as "not delivered" and retry.
            error = f"{type(exc).__name__}: {exc}"
        if job.accept is not None and status_code is not None:
            delivered = job.accept(status_code, answer_body)
        else:
            delivered = status_code is not None and 200 <= status_code < 300
        record = DeliveryAttempt(
            job.delivery_id, job.event_id, job.url, attempt_no, delivered, status_code, error, sent_at,
            int((time.monotonic() - started) * 1000), dict(job.labels),
        )
        _log.info("callback %s %s attempt %d -> %s", job.event_id, job.url, attempt_no, status_code or error)
        with self._cv:
            self._attempts.append(record)
            if not delivered and attempt_no < self.max_attempts:
                self._push(job, attempt_no + 1, self._schedule_s[attempt_no - 1] * self._retry_scale)
            for follower in job.then if attempt_no == 1 else []:
                follower.delivery_id = f"D-{next(self._ids):06d}"
                self._push(follower, attempt_no=1, delay_s=follower.first_delay_s)
