# Herald: `make dev` runs the local stack, `make test` installs test tools and runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PYTHON  ?= python3
CARGO   ?= cargo
PORT    ?= 3000

.PHONY: help dev test venv lint openapi soak fuzz clean

help:
	@echo "make dev    build and run the whole pipeline on 127.0.0.1:$(PORT) (in memory)"
	@echo "make test   install test tools into $(VENV) and run fmt, clippy and every test"
	@echo "make soak   the long fault-injection soak (SOAK_EVENTS=10000)"
	@echo "make fuzz   cargo fuzz each target for FUZZ_SECONDS (60)"

## The local stack: api + ingest + dispatch in one process.
dev:
	$(CARGO) run -p herald-cli -- dev --port $(PORT)

## Python test tools (moto server, standardwebhooks) in a project-local venv.
$(VENV)/.installed: requirements-test.txt
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
	  echo "python3 venv module missing: installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

## Regenerate the committed OpenAPI document from the code.
openapi:
	$(CARGO) run -q -p herald-cli -- openapi > openapi.json

# The SAM CLI reads these, but validating needs no account: nothing is sent anywhere.
SAM_ENV := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline SAM_CLI_TELEMETRY=0

lint: venv
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) $(VENV)/bin/sam validate --lint --region us-east-1

test: venv lint
	$(CARGO) test --workspace

## 10,000 events through the stack on moto with faulty receivers (not part of `make test`).
SOAK_EVENTS ?= 10000
soak: venv
	HERALD_SOAK_EVENTS=$(SOAK_EVENTS) $(CARGO) test -p herald-tests --test soak -- --nocapture

## cargo fuzz on event parsing, matching and the URL guard, FUZZ_SECONDS each. Runs on the
## stable toolchain: RUSTC_BOOTSTRAP lets it take the sanitizer flags cargo fuzz passes.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := event_parse pattern_match url_check
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

clean:
	rm -rf $(VENV) target
