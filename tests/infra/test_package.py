"""The shipped artefacts work as Lambda loads them: the deployment zip plus the layer, nothing else.

``chalice package`` silently leaves out anything it does not know (a top-level functions/ for one), and a
missing module only shows up as an ImportError on the first invocation. So: build both zips exactly as a
deploy does, unzip them, and in an isolated interpreter whose sys.path is only [deployment, layer/python]
(plus the standard library) import every handler string the synthesized template names.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra import build
from infra.app import layer_build

NEVER_SHIPPED = ("sandbox/", "tests/", "infra/", "bench/", "layers/", "payhub_cli/", "requirements")

IMPORT_HANDLERS = r"""
import importlib, json, sys, time
deployment, layer, handlers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:] = [deployment, layer] + json.loads(sys.argv[4])
report = {}
for handler in handlers:
    module_name, _, attribute = handler.rpartition(".")
    started = time.perf_counter()
    target = getattr(importlib.import_module(module_name), attribute)
    assert callable(target), handler
    report[handler] = round((time.perf_counter() - started) * 1000, 1)
stray = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""})
stray = [f for f in stray if not f.startswith((deployment, layer)) and "site-packages" in f]
print(json.dumps({"import_ms": report, "stray": stray}))
"""


@pytest.fixture(scope="module")
def deployment_zip() -> Path:
    return build.package("dev") / "deployment.zip"


@pytest.fixture(scope="module")
def unpacked(deployment_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("lambda")
    with zipfile.ZipFile(deployment_zip) as archive:
        archive.extractall(root / "task")
    with zipfile.ZipFile(layer_build.build()) as archive:
        archive.extractall(root / "opt")
    return root / "task", root / "opt" / "python"


def template_handlers(template: dict[str, Any]) -> list[str]:
    return sorted(r["Properties"]["Handler"] for r in template["Resources"].values()
                  if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function"))


def test_zip_ships_the_app_and_functions_but_nothing_else(deployment_zip: Path):
    names = zipfile.ZipFile(deployment_zip).namelist()
    assert "app.py" in names
    assert any(n.startswith("chalicelib/") for n in names)
    assert "functions/__init__.py" in names, "functions/ must be staged (vendor/functions)"
    offending = [n for n in names if n.startswith(NEVER_SHIPPED)]
    assert not offending, offending
    # runtime packages come from the layer only
    assert not [n for n in names if n.startswith(("pydantic/", "cryptography/", "boto3/", "gmssl/"))]


def test_layer_is_reproducible_and_precompiled():
    zip_path = layer_build.build()
    names = zipfile.ZipFile(zip_path).namelist()
    assert names == sorted(names)
    assert all(n.startswith("python/") for n in names)
    assert any(n.endswith(".cpython-311.pyc") for n in names)
    infos = zipfile.ZipFile(zip_path).infolist()
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_every_handler_in_the_template_imports_like_lambda(synth, unpacked):
    deployment, layer = unpacked
    handlers = template_handlers(synth("dev")) + ["app.app"]  # app.app: what `chalice local` and tests run
    assert len(handlers) >= 9
    stdlib = [p for p in sys.path if p and "site-packages" not in p and Path(p).exists()]
    stdlib += [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]
    env = {"PAYHUB_STAGE": "dev", "PAYHUB_PUBLIC_BASE_URL": "https://pay.example.com",
           "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORT_HANDLERS, str(deployment), str(layer), json.dumps(handlers),
         json.dumps([p for p in stdlib if not p.startswith(str(Path.cwd()))])],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["stray"], f"imported from outside the package: {report['stray']}"
    assert set(report["import_ms"]) == set(handlers)
    print("cold import ms (cumulative in one process):", report["import_ms"])
