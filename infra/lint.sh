#!/usr/bin/env bash
# Synthesize one stage (default dev) into cdk.out/ and lint the template with cfn-lint (+ .cfnlintrc).
#   bash infra/lint.sh [stage]
# cfn-lint runs the SAM transform itself when aws-sam-translator is importable; without it the
# AWS::Serverless::* resources are only schema-checked, so it says so instead of passing quietly.
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:-dev}"
export CDK_OUTDIR="${CDK_OUTDIR:-cdk.out}"
# CDK_CONTEXT_JSON is how the cdk CLI hands `-c stage=...` to the app; set it the same way here.
CDK_CONTEXT_JSON="{\"stage\": \"${stage}\"}" python infra/app.py
template="${CDK_OUTDIR}/PayHub-${stage}.template.json"
test -f "${template}" || { echo "no template at ${template}" >&2; exit 1; }
if ! python -c "import samtranslator" 2>/dev/null; then
  echo "note: aws-sam-translator not installed; SAM resources are not transformed before linting" >&2
fi
cfn-lint --config-file .cfnlintrc -- "${template}"
echo "cfn-lint: ${template} clean"
