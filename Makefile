# One command starts the local stack, one runs every test. Both create the virtualenv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Node tools of the infra, pinned in infra/node/package-lock.json: the CDK CLI and the IAM policy simulator.
NODE_TOOLS := infra/node/node_modules/.installed
STAGE ?= dev

.PHONY: run test test-fast conformance unit e2e infra-test lint typecheck synth cfn-lint bench layer package clean \
	deploy node-tools

$(STAMP): requirements.txt requirements-engine.txt requirements-dev.txt requirements-paypal-sdk.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# PayPal's SDK in a directory of its own: it ships a top-level `tests` package (docs/conformance.md).
	rm -rf $(VENV)/paypal-sdk
	$(PY) -m pip install --quiet --target $(VENV)/paypal-sdk -r requirements-paypal-sdk.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

$(NODE_TOOLS): infra/node/package.json infra/node/package-lock.json
	cd infra/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

node-tools: $(NODE_TOOLS)

run: $(STAMP)  ## the whole local stack in the foreground; Ctrl-C stops it
	$(PY) -m infra.local.run

test: $(STAMP) $(NODE_TOOLS) lint typecheck cfn-lint  ## everything CI runs
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)  ## unit and sandbox tests only (seconds)
	$(PY) -m pytest -q tests/unit tests/sandbox

conformance: $(STAMP)  ## the channels' own SDKs as clients of the sandboxes; doc-built callbacks at the hub
	$(PY) -m pytest -q tests/conformance

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy chalicelib

synth: layer  ## stage the package and synthesize PayHub-$(STAGE) offline into cdk.out/
	CDK_OUTDIR=cdk.out CDK_CONTEXT_JSON='{"stage": "$(STAGE)"}' $(PY) infra/app.py
	test -f cdk.out/PayHub-$(STAGE).template.json

# make deploy STAGE=dev DOMAIN=pay-dev.example.com CERTIFICATE_ARN=arn:aws:acm:us-east-1:...  (docs/deploy.md)
deploy: layer $(NODE_TOOLS)  ## CDK deploy of PayHub-$(STAGE) to the account of your AWS credentials
	@test -n "$(DOMAIN)" || { echo "make deploy: DOMAIN=<custom domain> is required (docs/deploy.md)" >&2; exit 2; }
	@test -n "$(CERTIFICATE_ARN)" || { echo "make deploy: CERTIFICATE_ARN=<ACM certificate in us-east-1> is required (docs/deploy.md)" >&2; exit 2; }
	cd infra && node/node_modules/.bin/cdk deploy PayHub-$(STAGE) --app "$(CURDIR)/$(PY) app.py" \
		--context stage=$(STAGE) --output "$(CURDIR)/cdk.out" --require-approval broadening \
		--parameters DomainName=$(DOMAIN) --parameters CertificateArn=$(CERTIFICATE_ARN) \
		$(if $(PLUGIN_LAYERS),--context plugin_layers=$(PLUGIN_LAYERS))

cfn-lint: layer  ## synthesize, then lint the template with cfn-lint
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash infra/lint.sh

bench: $(STAMP)  ## benchmarks: figures printed, recorded in bench/README.md
	$(PY) bench/run_all.py

layer: $(STAMP)
	$(PY) layers/build.py
	$(PY) layers/build.py --layer engine

package: $(STAMP)
	$(PY) infra/build.py --stage dev --package

clean:
	rm -rf build cdk.out layers/build .local .pytest_cache .mypy_cache .ruff_cache infra/node/node_modules
