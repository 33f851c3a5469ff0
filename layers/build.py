"""Build the runtime-dependencies Lambda layer from requirements.txt, reproducibly.

Same requirements.txt in, same bytes out: wheels only for the Lambda platform (never built from source on
this machine), ``__pycache__`` stripped, every module precompiled with ``unchecked-hash`` pycs (no source
mtimes inside, and Lambda skips the stat check at import), zip entries sorted with fixed timestamps and
permissions. The build is skipped when requirements.txt and this script are unchanged since the last one.

    python layers/build.py [--force]   -> layers/build/runtime-deps.zip, prints its sha256
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

# The Lambda runtime: chalice picks python3.X from the interpreter that packages the app, so the layer must
# target the same minor version or the compiled wheels (pydantic-core, cryptography) will not import.
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
PLATFORM = "manylinux2014_x86_64"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16
DIR_MODE = (0o755 << 16) | 0x10


def inputs_digest() -> str:
    """What the layer depends on: the requirements, the target platform and this script."""
    digest = hashlib.sha256()
    for part in (REQUIREMENTS.read_bytes(), PLATFORM.encode(), PYTHON_VERSION.encode(), Path(__file__).read_bytes()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def build(force: bool = False) -> Path:
    digest = inputs_digest()
    if not force and ZIP_PATH.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return ZIP_PATH
    if BUILD.exists():
        shutil.rmtree(BUILD)
    SITE.mkdir(parents=True)
    _install()
    _strip_caches()
    _precompile()
    _write_zip()
    STAMP.write_text(digest + "\n")
    return ZIP_PATH


def _install() -> None:
    subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--no-warn-conflicts",
            "--only-binary=:all:", "--platform", PLATFORM, "--python-version", PYTHON_VERSION,
            "--implementation", "cp", "--target", str(SITE), "-r", str(REQUIREMENTS),
        ],
        check=True,
    )


def _strip_caches() -> None:
    for cache in sorted(SITE.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    # pip's --target leaves these behind; they hold absolute paths and install timestamps.
    for bin_dir in SITE.glob("bin"):
        shutil.rmtree(bin_dir)


def _precompile() -> None:
    # unchecked-hash: the pyc records a source hash rather than an mtime (deterministic), and the runtime does
    # not re-hash the source on import (faster cold start). quiet=1 prints only errors.
    ok = compileall.compile_dir(
        str(SITE),
        quiet=1,
        workers=1,
        invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH,
        ddir="/opt/python",  # tracebacks show the path the file has on Lambda
    )
    if not ok:
        # Some packages ship files that only parse on other Python versions (test fixtures, py2 shims);
        # they are never imported, so a failure there is reported but not fatal.
        print("compileall reported errors (see above); continuing", file=sys.stderr)


def _write_zip() -> None:
    entries = sorted((path.relative_to(BUILD).as_posix() + ("/" if path.is_dir() else ""), path)
                     for path in SITE.rglob("*"))
    with zipfile.ZipFile(ZIP_PATH, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
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
    args = parser.parse_args()
    path = build(force=args.force)
    print(f"{sha256(path)}  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    os.umask(0o022)
    main()
