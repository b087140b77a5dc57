# Energent control plane. `make dev` runs the whole stack locally; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHECKOV := .tools/checkov/bin/checkov
# The google and google-beta provider schemas (6.50.0), read from the jsii assembly of their cdktf bindings: the
# tests check every resource and data block of infra/ against them, as terraform validate would with providers.
SCHEMAS := .tools/provider-schemas
CDKTF_GOOGLE := 16.12.1
PROVIDER_SCHEMAS := $(SCHEMAS)/google.json $(SCHEMAS)/google-beta.json
# axe-core, the accessibility rules the portal's browser tests run in every page (tests/e2e/test_portal.py).
AXE_CORE := 4.14.1
AXE := .tools/axe-core/axe.min.js

.PHONY: venv dev test lint typecheck unit integration e2e bench package cloudbuild constraints invoice-sample clean \
	portal-screenshots

venv: $(STAMP) $(CHECKOV) $(PROVIDER_SCHEMAS) $(AXE)

$(STAMP): requirements-dev.txt constraints.txt shared/pyproject.toml cli/pyproject.toml $(wildcard functions/*/requirements.txt)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -r requirements-dev.txt
	touch $@

# The policy scanner lives in a venv of its own: its pins clash with the test tools'.
$(CHECKOV): requirements-checkov.txt
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# Downloaded once (npm's own cache and integrity check); the JSON is extracted again when the extractor changes.
.SECONDARY: $(PROVIDER_SCHEMAS:.json=-$(CDKTF_GOOGLE).tgz)
$(SCHEMAS)/%-$(CDKTF_GOOGLE).tgz:
	mkdir -p $(SCHEMAS)
	cd $(SCHEMAS) && npm pack --silent @cdktf/provider-$*@$(CDKTF_GOOGLE) >/dev/null
	mv $(SCHEMAS)/cdktf-provider-$*-$(CDKTF_GOOGLE).tgz $@

$(SCHEMAS)/%.json: $(SCHEMAS)/%-$(CDKTF_GOOGLE).tgz tools/provider_schema.py
	$(PYTHON) -m tools.provider_schema $< > $@.tmp
	mv $@.tmp $@

# Downloaded once, like the provider schemas: the one file of the npm package the tests inject into pages.
$(AXE):
	mkdir -p .tools/axe-core
	cd .tools/axe-core && npm pack --silent axe-core@$(AXE_CORE) >/dev/null && \
		tar -xzf axe-core-$(AXE_CORE).tgz package/axe.min.js && mv package/axe.min.js axe.min.js.tmp && \
		rmdir package && rm axe-core-$(AXE_CORE).tgz
	mv .tools/axe-core/axe.min.js.tmp $@

dev: $(STAMP)
	$(BIN)/python -m local.stack

lint: venv
	$(BIN)/ruff check .

# Types of the code that is deployed: the shared library, then each function as it is packaged (its folder and the
# shared library on the path).
typecheck: venv
	$(BIN)/mypy shared/energent_shared
	for function in functions/*/; do \
		MYPYPATH=shared:$$function $(BIN)/mypy $${function}main.py $$function$$(basename $$function) || exit 1; \
	done

test: lint typecheck
	$(BIN)/python -m pytest

unit: venv
	$(BIN)/python -m pytest tests/unit

integration: venv
	$(BIN)/python -m pytest tests/integration

e2e: venv
	$(BIN)/python -m pytest tests/e2e

# A PNG of every portal page (wide, 360 px, Dutch) from the browser tests, in .local/portal-screenshots/
portal-screenshots: venv
	rm -rf .local/portal-screenshots
	PORTAL_SCREENSHOTS=$(CURDIR)/.local/portal-screenshots $(BIN)/python -m pytest tests/e2e/test_portal.py \
		-k "every_page or dutch or budget" -q
	ls .local/portal-screenshots

bench: venv
	$(BIN)/python -m benchmarks

package: venv
	for source in $$(ls -d functions/*/); do $(BIN)/python -m tools.package $$source build/$$source; done

cloudbuild: venv
	$(BIN)/python -m tools.cloudbuild > cloudbuild-functions.yaml

# Sample invoices and credit notes made by billing's own code, no stack needed: .local/samples/ (JSON, HTML, PDF, UBL)
invoice-sample: venv
	$(BIN)/python -m tools.invoice_sample

constraints: venv
	$(BIN)/pip freeze --exclude-editable | sed '1i # Pinned versions of every package the project installs (regenerate: make constraints).' > constraints.txt

clean:
	rm -rf $(VENV) .tools build .local .pytest_cache .ruff_cache .mypy_cache
