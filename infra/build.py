"""Packaging build step: stage exactly what ships to Lambda, then let Chalice package it.

``chalice package`` ships only ``app.py``, ``chalicelib/``, ``vendor/`` and what ``requirements.txt``
resolves to (docs/design.md#packaging). So this step copies a clean project into ``build/stage/<stage>/``:

- ``app.py``, ``chalicelib/`` and ``.chalice/config.json`` as they are;
- ``functions/`` as ``vendor/functions/`` (Chalice copies vendor/ to the zip root, so Lambda imports
  ``functions.payments`` exactly as the tests do);
- an EMPTY ``requirements.txt``: runtime packages live in the layer (layers/build.py), not zipped twice;
- the shipped modules' bytecode, compiled here (as the layer's is): Lambda's code directory is read-only, so
  without it every cold start compiled the hub's own modules from source again (~50 ms of CPU for the payments
  function's import alone, more than its whole budget above the floor; docs/cold-start.md).

Nothing else is copied, so sandbox/, tests/, infra/, bench/ can never reach a Lambda.

    python infra/build.py --stage dev            # stage only (what the CDK app consumes)
    python infra/build.py --stage dev --package  # also run `chalice package` into build/package/<stage>/
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as `python infra/build.py`: import chalicelib from the repo root
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "infra"]

from chalicelib.config.names import STAGES  # noqa: E402

BUILD_DIR = ROOT / "build"
# What the app sees as its public URL while Chalice imports it to read the routes (packaging only; never
# shipped: the deployed functions get the stack's https://<DomainName>). A reserved TLD: it resolves nowhere.
PACKAGING_PUBLIC_BASE_URL = "https://packaging.invalid"
# Copied into the staged project as (source relative to ROOT, destination relative to the stage dir).
SHIPPED = (
    ("app.py", "app.py"),
    ("chalicelib", "chalicelib"),
    (".chalice/config.json", ".chalice/config.json"),
    ("functions", "vendor/functions"),
)
NEVER_SHIPPED = ("sandbox", "tests", "infra", "bench", "layers", "payhub_cli")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")


def stage_dir(stage: str) -> Path:
    return BUILD_DIR / "stage" / stage


def stage_project(stage: str, root: Path = ROOT) -> Path:
    """Copy the shippable part of the project into a fresh ``build/stage/<stage>/`` and return it."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    target = stage_dir(stage)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for source, destination in SHIPPED:
        _copy(root / source, target / destination)
    (target / "requirements.txt").write_text("# runtime packages ship in the layer (layers/build.py)\n")
    for source, in_lambda in COMPILED:
        _precompile(target / source, in_lambda)
    _precompile_chalice(target / "vendor" / "chalice" / "__pycache__")
    return target


# The staged code compiled for the interpreter that builds it, which is the one Lambda runs (chalice takes the runtime
# from it, as layers/build.py does): (staged directory, where Lambda has it, for tracebacks).
COMPILED = (("chalicelib", "/var/task/chalicelib"), ("vendor/functions", "/var/task/functions"))


def _precompile(directory: Path, in_lambda: str) -> None:
    # unchecked-hash: the pyc records the source's hash, not its mtime (the zip does not keep it reliably), and the
    # runtime loads it without reading the source again; the code of a deployment never changes under it.
    if not compileall.compile_dir(str(directory), quiet=1, workers=1, ddir=in_lambda,
                                  invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH):
        raise RuntimeError(f"{directory}: a module does not compile (see above)")


def _precompile_chalice(pycache: Path) -> None:
    """``chalice package`` adds the framework's own two modules to the zip (``chalice/app.py``, ``chalice/__init__.py``,
    from the chalice that packages) without bytecode: ~15 ms of CPU compiling them at every API function's cold start.
    Their pycs, compiled from those very files, go in ``vendor/`` and so land beside them in the zip."""
    import chalice
    import chalice.app

    for module in (chalice, chalice.app):
        source = Path(module.__file__ or "")
        py_compile.compile(str(source), cfile=str(pycache / f"{source.stem}.{sys.implementation.cache_tag}.pyc"),
                           dfile=f"/var/task/chalice/{source.name}", doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def package(stage: str, output_dir: Path | None = None) -> Path:
    """Stage the project and run ``chalice package`` on it; returns the output dir (sam.json, deployment.zip)."""
    project = stage_project(stage)
    output = output_dir or BUILD_DIR / "package" / stage
    if output.exists():
        shutil.rmtree(output)
    # chalice needs a region to render ARNs even though nothing is called; any region does offline.
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    # chalice imports the app under the stage's settings; a local-only setting of the builder's shell (the
    # local stack's loopback allowance) is not the stage's and would be refused there. Nothing of env ships.
    env.pop("PAYHUB_WEBHOOK_ALLOW_LOOPBACK", None)
    env["PAYHUB_PUBLIC_BASE_URL"] = PACKAGING_PUBLIC_BASE_URL
    subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())",
         "package", "--stage", stage, str(output)],
        cwd=project,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return output


def load_script(path: Path) -> ModuleType:
    """Import a standalone script such as layers/build.py (layers/ is not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f"_payhub_{path.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copy(source: Path, destination: Path) -> None:
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing: the package cannot be built without it")
    destination.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, destination, ignore=_IGNORED)
    else:
        shutil.copy2(source, destination)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev", choices=STAGES)
    parser.add_argument("--package", action="store_true", help="also run `chalice package`")
    args = parser.parse_args()
    if args.package:
        print(package(args.stage))
    else:
        print(stage_project(args.stage))


if __name__ == "__main__":
    main()
