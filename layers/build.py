"""Build the Lambda layers, reproducibly: the runtime dependencies every function uses (requirements.txt), and
the reconciliation engine's (requirements-engine.txt: DuckDB, ~60 MB unzipped), which only the ReconShards
functions get, so no other function's package size or cold start pays for it.

Same requirements.txt in, same bytes out: wheels only for the Lambda platform (never built from source on
this machine), ``__pycache__`` stripped, every module precompiled with ``unchecked-hash`` pycs (no source
mtimes inside, and Lambda skips the stat check at import), zip entries sorted with fixed timestamps and
permissions. The build is skipped when requirements.txt and this script are unchanged since the last one.

    python layers/build.py [--force] [--layer engine]   -> layers/build/runtime-deps.zip (or
                                                           layers/build/engine/recon-engine.zip), prints its sha256
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
BUILD = ROOT / "layers" / "build"
SITE = BUILD / "python"  # Lambda adds /opt/python to sys.path
ZIP_PATH = BUILD / "runtime-deps.zip"
STAMP = BUILD / "inputs.sha256"
# The engine's layer: its own requirements, its own build directory (the runtime build clears BUILD whole, so
# the engine builds outside it).
ENGINE_REQUIREMENTS = ROOT / "requirements-engine.txt"
ENGINE_BUILD = ROOT / "layers" / "build-engine"
LAYERS = {"runtime": (REQUIREMENTS, BUILD, "runtime-deps.zip"), "engine": (ENGINE_REQUIREMENTS, ENGINE_BUILD, "recon-engine.zip")}

# The Lambda runtime: chalice picks python3.X from the interpreter that packages the app, so the layer must
# target the same minor version or the compiled wheels (pydantic-core, cryptography) will not import.
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
PLATFORM = "manylinux2014_x86_64"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16
DIR_MODE = (0o755 << 16) | 0x10


def inputs_digest(requirements: Path = REQUIREMENTS) -> str:
    """What the layer depends on: the requirements, the target platform and this script."""
    digest = hashlib.sha256()
    for part in (requirements.read_bytes(), PLATFORM.encode(), PYTHON_VERSION.encode(), Path(__file__).read_bytes()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def build(force: bool = False, layer: str = "runtime") -> Path:
    requirements, build_dir, zip_name = LAYERS[layer]
    site, zip_path, stamp = build_dir / "python", build_dir / zip_name, build_dir / "inputs.sha256"
    digest = inputs_digest(requirements)
    if not force and zip_path.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return zip_path
    if build_dir.exists():
        shutil.rmtree(build_dir)
    site.mkdir(parents=True)
    _install(requirements, site)
    _strip_caches(site)
    _precompile(site)
    _write_zip(build_dir, site, zip_path)
    stamp.write_text(digest + "\n")
    return zip_path


def _install(requirements: Path, site: Path) -> None:
    subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--no-warn-conflicts",
            "--only-binary=:all:", "--platform", PLATFORM, "--python-version", PYTHON_VERSION,
            "--implementation", "cp", "--target", str(site), "-r", str(requirements),
        ],
        check=True,
    )


def _strip_caches(site: Path) -> None:
    for cache in sorted(site.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    # pip's --target leaves these behind; they hold absolute paths and install timestamps.
    for bin_dir in site.glob("bin"):
        shutil.rmtree(bin_dir)


def _precompile(site: Path) -> None:
    # unchecked-hash: the pyc records a source hash rather than an mtime (deterministic), and the runtime does
    # not re-hash the source on import (faster cold start). quiet=1 prints only errors.
    ok = compileall.compile_dir(
        str(site),
        quiet=1,
        workers=1,
        invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH,
        ddir="/opt/python",  # tracebacks show the path the file has on Lambda
    )
    if not ok:
        # Some packages ship files that only parse on other Python versions (test fixtures, py2 shims);
        # they are never imported, so a failure there is reported but not fatal.
        print("compileall reported errors (see above); continuing", file=sys.stderr)


def _write_zip(build_dir: Path, site: Path, zip_path: Path) -> None:
    entries = sorted((path.relative_to(build_dir).as_posix() + ("/" if path.is_dir() else ""), path)
                     for path in site.rglob("*"))
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.create_system = 3  # unix, so the mode bits mean the same on every build host
            if path.is_dir():
                info.external_attr = DIR_MODE
                archive.writestr(info, b"")
            else:
                info.external_attr = FILE_MODE
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes(), compresslevel=9)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
    parser.add_argument("--layer", choices=sorted(LAYERS), default="runtime")
    args = parser.parse_args()
    path = build(force=args.force, layer=args.layer)
    print(f"{sha256(path)}  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    os.umask(0o022)
    main()
