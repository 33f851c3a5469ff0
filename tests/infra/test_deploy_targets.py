"""The template gives every function its public URL from the stage's custom domain, ``make synth`` writes the
cloud assembly where the README says, and ``make deploy`` drives the pinned CDK CLI with the stage parameters."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from infra.stack import CERTIFICATE_ARN_PATTERN, DOMAIN_NAME_PATTERN

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "infra" / "node" / "node_modules" / ".bin" / "cdk"
DOMAIN_REF = {"Fn::Join": ["", ["https://", {"Ref": "DomainName"}]]}


def test_every_function_is_given_the_public_url_of_the_custom_domain(synth) -> None:
    template = synth("dev")
    functions = {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) >= 12
    for logical_id, function in functions.items():
        assert function["Properties"]["Environment"]["Variables"]["PAYHUB_PUBLIC_BASE_URL"] == DOMAIN_REF, logical_id
    assert set(template["Parameters"]) >= {"DomainName", "CertificateArn"}
    domain = template["Resources"]["RestAPI"]["Properties"]["Domain"]
    assert domain["DomainName"] == {"Ref": "DomainName"} and domain["CertificateArn"] == {"Ref": "CertificateArn"}
    assert domain["EndpointConfiguration"] == "EDGE" and domain["BasePath"] == ["/"]
    assert template["Outputs"]["PublicBaseUrl"]["Value"] == DOMAIN_REF


@pytest.mark.parametrize(("value", "ok"), [("pay-dev.example.com", True), ("pay.example.cn", True),
                                           ("Pay.Example.com", False), ("pay.example.com.", False),
                                           ("*.example.com", False), ("localhost", False),
                                           ("https://pay.example.com", False)])
def test_the_domain_parameter_takes_a_dns_name_only(value: str, ok: bool) -> None:
    assert bool(re.match(DOMAIN_NAME_PATTERN, value)) is ok


def test_the_certificate_must_be_in_us_east_1_for_an_edge_api() -> None:
    arn = "arn:aws:acm:{}:123456789012:certificate/12345678-1234-1234-1234-123456789012"
    assert re.match(CERTIFICATE_ARN_PATTERN, arn.format("us-east-1"))
    assert not re.match(CERTIFICATE_ARN_PATTERN, arn.format("ap-east-1"))


def test_synth_writes_to_cdk_out_unless_the_cli_says_otherwise(monkeypatch) -> None:
    from infra.app import output_dir

    monkeypatch.delenv("CDK_OUTDIR", raising=False)
    assert output_dir() == ROOT / "cdk.out"
    monkeypatch.setenv("CDK_OUTDIR", "/tmp/elsewhere")
    assert output_dir() == Path("/tmp/elsewhere")


def _make_dry_run(*args: str) -> str:
    done = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S603, S607
    return done.stdout


def test_make_synth_names_cdk_out_and_checks_the_template_is_there() -> None:
    out = _make_dry_run("synth", "STAGE=test")
    assert "CDK_OUTDIR=cdk.out" in out and '{"stage": "test"}' in out
    assert "test -f cdk.out/PayHub-test.template.json" in out


def test_make_deploy_runs_the_pinned_cdk_cli_with_the_stage_parameters() -> None:
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
    out = _make_dry_run("deploy", "STAGE=dev", "DOMAIN=pay-dev.example.com", f"CERTIFICATE_ARN={arn}")
    command = out.replace("\\\n", " ")
    assert "node/node_modules/.bin/cdk deploy PayHub-dev" in command
    assert "--context stage=dev" in command and f"{ROOT}/cdk.out" in command
    assert "--parameters DomainName=pay-dev.example.com" in command
    assert f"--parameters CertificateArn={arn}" in command


def test_the_pinned_cdk_cli_synthesizes_the_app_offline(tmp_path: Path) -> None:
    """What ``make deploy`` does before it needs an account: the CLI runs the app and reads the assembly."""
    assert CDK.exists(), "run `make node-tools` (npm ci in infra/node)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYHUB_", "AWS_", "CDK_"))}
    env |= {"AWS_REGION": "us-east-1", "CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    done = subprocess.run(  # noqa: S603
        [str(CDK), "synth", "PayHub-test", "--app", f"{ROOT / '.venv' / 'bin' / 'python'} app.py",
         "--context", "stage=test", "--output", str(tmp_path), "--quiet", "--no-notices"],
        cwd=ROOT / "infra", env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    template = json.loads((tmp_path / "PayHub-test.template.json").read_text())
    assert template["Parameters"]["DomainName"]["AllowedPattern"] == DOMAIN_NAME_PATTERN
