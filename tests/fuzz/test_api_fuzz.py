"""Schema-driven fuzzing of the whole merchant and operator API with schemathesis, against the served stack.

Schemathesis reads the OpenAPI document the API serves and sends positive cases (valid by the document) and
negative ones (each violating it somewhere) to every operation, in its coverage phase (boundaries and each
constraint broken in turn) and its fuzzing phase (Hypothesis). Every answer must be no server error, a
status the document lists for that operation, JSON, and valid against the documented schema; a request
that takes longer than the timeout counts as a hang. The seed is fixed and generation deterministic, so a
run is repeatable in CI; the number of cases and the time are printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
MAX_EXAMPLES = int(os.environ.get("PAYHUB_FUZZ_MAX_EXAMPLES", "60"))  # fuzzing phase, per operation
MIN_CASES = 1000
REQUEST_TIMEOUT_S = 10
SEED = 20261201
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
VERBS = {"get", "post", "put", "patch", "delete"}


@pytest.mark.timeout(900)
def test_schemathesis_finds_no_server_error_and_nothing_outside_the_document(stack, merchant, tmp_path):
    from chalicelib.service.operators import create_operator_key

    operator_key = create_operator_key("fuzzer").api_key
    merchant.create_payment()  # so lists and lookups have something to show besides 404s
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{stack.api_url}/v1/openapi.json",
        "--url", stack.api_url, "--checks", CHECKS, "--mode", "all", "--phases", "coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--generation-deterministic",
        "--request-timeout", str(REQUEST_TIMEOUT_S), "--workers", "1",
        "--continue-on-failure", "--no-color", "--report", "json", "--report-json-path", str(report),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "PAYHUB_FUZZ_MERCHANT_KEY": merchant.api_key,
           "PAYHUB_FUZZ_OPERATOR_KEY": operator_key}
    started = time.monotonic()
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=840, check=False)
    elapsed = time.monotonic() - started
    assert report.exists(), run.stdout[-6000:] + run.stderr[-2000:]
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]
    print(f"\nschemathesis: {cases['generated']} cases on {summary['operations']['tested']} operations in "
          f"{elapsed:.0f} s; failures {summary['failures']}, errors {summary['errors']}")
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    document = json.loads(requests.get(f"{stack.api_url}/v1/openapi.json", timeout=10).text)
    operations = sum(1 for path in document["paths"].values() for verb in path if verb in VERBS)
    assert summary["operations"]["tested"] == summary["operations"]["total"] == operations
    assert cases["generated"] >= MIN_CASES
    assert cases["with_failures"] == cases["errored"] == 0
