"""The shipped artefacts work as Lambda loads them: the deployment zip plus the layer, nothing else.

``chalice package`` silently leaves out anything it does not know (a top-level functions/ for one), and a
missing module only shows up as an ImportError on the first invocation. So: build both zips exactly as a
deploy does, unzip them, and in an isolated interpreter whose sys.path is only [deployment, layer/python]
(plus the standard library) import every handler string the synthesized template names.
"""

from __future__ import annotations

import importlib.util
import json
import re
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


def test_zip_ships_the_hubs_modules_precompiled(deployment_zip: Path):
    """Lambda cannot write bytecode next to the code: every module of the hub (chalicelib/, functions/) ships its pyc
    for the runtime's interpreter, hash-based and unchecked (bit 0 of the flags set, bit 1 clear), so a cold start
    neither compiles the module nor reads its source to check it."""
    archive = zipfile.ZipFile(deployment_zip)
    names = set(archive.namelist())
    modules = [n for n in names if n.startswith(("chalicelib/", "functions/")) and n.endswith(".py")]
    assert len(modules) > 100

    def pyc(module: str) -> str:
        folder, _, file = module.rpartition("/")
        return f"{folder}/__pycache__/{file[:-3]}.{sys.implementation.cache_tag}.pyc"

    assert [m for m in modules if pyc(m) not in names] == []
    flags = {int.from_bytes(archive.read(pyc(m))[4:8], "little") for m in modules}
    assert flags == {0b01}
    # chalice adds its own two modules to the zip: their pycs are compiled from exactly the sources it adds
    for module in ("chalice/__init__.py", "chalice/app.py"):
        compiled = archive.read(pyc(module))
        assert int.from_bytes(compiled[4:8], "little") == 0b01
        assert compiled[8:16] == importlib.util.source_hash(archive.read(module))


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


# The python3.11 Lambda runtime runs on Amazon Linux 2: glibc 2.26. A wheel that needs more fails to import there
# even though it imports here (this machine's glibc is newer), e.g. tongsuopy's manylinux_2_28 wheel.
LAMBDA_GLIBC = (2, 26)

SM2_ROUND_TRIP = r"""
import json, sys
sys.path[:] = [sys.argv[1], sys.argv[2]] + json.loads(sys.argv[3])
from chalicelib.crypto import sm
private_hex, public_hex = sm.sm2_generate_keypair()
signature = sm.sm2_sign(private_hex, public_hex, b"callback body")
print(json.dumps({"engine": sm.sm2_engine().name, "module": sys.modules["tongsuopy"].__file__,
                  "verified": sm.sm2_verify(public_hex, b"callback body", signature),
                  "tampered": sm.sm2_verify(public_hex, b"callback body!", signature)}))
"""


def _glibc_needed(shared_object: Path) -> tuple[int, int]:
    """The newest GLIBC_x.y symbol version the file references (its .dynstr names them)."""
    found = {(int(a), int(b)) for a, b in re.findall(rb"GLIBC_(\d+)\.(\d+)", shared_object.read_bytes())}
    return max(found, default=(0, 0))


def test_the_layer_carries_a_compiled_sm2_engine_the_lambda_runtime_can_load(synth, unpacked):
    deployment, layer = unpacked
    engine = list(layer.glob("tongsuopy/backends/_tongsuo*.so"))
    assert engine, "tongsuopy's compiled Tongsuo is missing from the layer"
    # tongsuopy 1.0.1 publishes two x86_64 wheels; pip on this machine would pick manylinux_2_28, which a
    # glibc-2.26 runtime refuses. The layer must hold the manylinux2014 (glibc 2.17) one.
    tags = [line for wheel in layer.glob("tongsuopy-*.dist-info/WHEEL")
            for line in wheel.read_text().splitlines() if line.startswith("Tag:")]
    assert tags and all("manylinux_2_17_x86_64" in t or "manylinux2014_x86_64" in t for t in tags), tags
    too_new = {str(so.relative_to(layer)): _glibc_needed(so) for so in layer.rglob("*.so*")
               if _glibc_needed(so) > LAMBDA_GLIBC}
    assert not too_new, f"needs a newer glibc than the Lambda runtime's {LAMBDA_GLIBC}: {too_new}"
    architectures = {tuple(r["Properties"].get("Architectures", ["x86_64"])) for r in synth("dev")["Resources"].values()
                     if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")}
    assert architectures == {("x86_64",)}, f"the layer holds x86_64 wheels only (layers/build.py): {architectures}"
    stdlib = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]
    stdlib += [p for p in sys.path if p.endswith("lib-dynload")]
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SM2_ROUND_TRIP, str(deployment), str(layer), json.dumps(stdlib)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["engine"].startswith("tongsuopy"), report
    assert report["module"].startswith(str(layer)), report
    assert report["verified"] is True and report["tampered"] is False, report
