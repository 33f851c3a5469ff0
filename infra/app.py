"""CDK app: ``python -m infra.app`` synthesizes ``PayHub-<stage>`` (``-c stage=dev`` with the cdk CLI).

Stage comes from the CDK context (``cdk synth -c stage=prod``) or ``PAYHUB_STAGE``; default ``dev``.
Synthesis is offline: no account, no lookups. The project is staged by ``infra.build`` and the layer built
by ``layers/build.py`` (cached) before the stack is defined, so ``cdk synth`` is the only command needed.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,22")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice renders ARNs with it; nothing is called

ROOT = Path(__file__).resolve().parent.parent
# Run as a script (`python infra/app.py`, the cdk CLI), Python puts infra/ first on sys.path, where
# infra/functions.py would shadow the top-level functions/ package that app.py imports: use the root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "infra"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aws_cdk as cdk  # noqa: E402

from infra import build  # noqa: E402
from infra.build import load_script  # noqa: E402
from infra.stack import PayHubStack  # noqa: E402

layer_build = load_script(ROOT / "layers" / "build.py")  # noqa: E305


def synth_stage(app: cdk.App, stage: str) -> PayHubStack:
    project_dir = build.stage_project(stage)
    layer_zip = layer_build.build()
    engine_layer_zip = layer_build.build(layer="engine")
    return PayHubStack(app, stage, project_dir=project_dir, layer_zip=layer_zip, engine_layer_zip=engine_layer_zip)


def output_dir() -> Path:
    """Where the cloud assembly goes: the cdk CLI says so in CDK_OUTDIR (``-o``); run by hand, ``cdk.out/``
    at the repository root, as the README says (cdk.App alone would pick a temporary directory)."""
    return Path(os.environ.get("CDK_OUTDIR") or ROOT / "cdk.out")


def main() -> None:
    # chalice.cdk leaves one uuid-named package per synth in build/chalice.out; keep only this run's.
    shutil.rmtree(build.BUILD_DIR / "chalice.out", ignore_errors=True)
    app = cdk.App(outdir=str(output_dir()))
    stage = app.node.try_get_context("stage") or os.environ.get("PAYHUB_STAGE") or "dev"
    stack = synth_stage(app, stage)
    app.synth()
    print(f"synthesized {stack.stack_name} into {output_dir() / stack.template_file}", file=sys.stderr)


if __name__ == "__main__":
    main()
