# One command starts the local stack, one runs every test. Both create the virtualenv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast conformance unit e2e infra-test lint typecheck synth cfn-lint bench layer package clean

$(STAMP): requirements.txt requirements-dev.txt requirements-paypal-sdk.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# PayPal's SDK in a directory of its own: it ships a top-level `tests` package (docs/conformance.md).
	rm -rf $(VENV)/paypal-sdk
	$(PY) -m pip install --quiet --target $(VENV)/paypal-sdk -r requirements-paypal-sdk.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)  ## the whole local stack in the foreground; Ctrl-C stops it
	$(PY) -m infra.local.run

test: $(STAMP) lint typecheck cfn-lint  ## everything CI runs
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)  ## unit and sandbox tests only (seconds)
	$(PY) -m pytest -q tests/unit tests/sandbox

conformance: $(STAMP)  ## the channels' own SDKs as clients of the sandboxes; doc-built callbacks at the hub
	$(PY) -m pytest -q tests/conformance

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy chalicelib

synth: layer  ## stage the package and synthesize the CDK app offline into cdk.out/
	CDK_CONTEXT_JSON='{"stage": "dev"}' $(PY) infra/app.py

cfn-lint: layer  ## synthesize, then lint the template with cfn-lint
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash infra/lint.sh

bench: $(STAMP)  ## benchmarks: figures printed, recorded in bench/README.md
	$(PY) bench/run_all.py

layer: $(STAMP)
	$(PY) layers/build.py

package: $(STAMP)
	$(PY) infra/build.py --stage dev --package

clean:
	rm -rf build cdk.out layers/build .local .pytest_cache .mypy_cache .ruff_cache
