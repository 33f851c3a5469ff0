"""Synthesize each stage once per session: jsii and chalice packaging are the slow part (~4 s a stage)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,22")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, Any]]:
    """``synth("dev")`` -> the CloudFormation template of ``PayHub-dev`` as a dict, cached per stage."""
    import aws_cdk as cdk

    from infra.app import synth_stage

    templates: dict[str, dict[str, Any]] = {}

    def _synth(stage: str) -> dict[str, Any]:
        if stage not in templates:
            # Chalice imports the app under the stage's environment, and leaves that stage's variables
            # (PAYHUB_STAGE=prod...) in os.environ: the whole environment is put back as it was afterwards, so no
            # later test runs as a deployed stage. The local-only loopback setting the e2e tests run with would
            # (rightly) be refused there, as it would be in any deployed function.
            saved = dict(os.environ)
            os.environ.pop("PAYHUB_WEBHOOK_ALLOW_LOOPBACK", None)
            try:
                app = cdk.App(outdir=str(tmp_path_factory.mktemp(f"cdk-{stage}")))
                stack = synth_stage(app, stage)
                templates[stage] = app.synth().get_stack_by_name(stack.stack_name).template
            finally:
                os.environ.clear()
                os.environ.update(saved)
        return templates[stage]

    return _synth
