# Herald: `make dev` runs the local stack, `make test` installs test tools and runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PYTHON  ?= python3
CARGO   ?= cargo
PORT    ?= 3000
# Where cargo puts builds (CARGO_TARGET_DIR when set, as cargo itself does).
TARGET  := $(or $(CARGO_TARGET_DIR),target)

.PHONY: help dev test test-browser venv lint openapi soak fuzz build e2e-lambda bench clean

help:
	@echo "make dev    build and run the whole pipeline on 127.0.0.1:$(PORT) (in memory)"
	@echo "make test   install test tools into $(VENV) and run fmt, clippy and every test"
	@echo "make soak   the long fault-injection soak (SOAK_EVENTS=10000)"
	@echo "make fuzz   cargo fuzz each target for FUZZ_SECONDS (60)"
	@echo "make bench  benchmarks (BENCH_RUNS=5); figures in BENCHMARKS.md"
	@echo "make build  release Lambda bootstraps for arm64 (target/lambda/<fn>/bootstrap)"
	@echo "make e2e-lambda  the three functions as real Lambdas on ministack"

## The local stack: api + ingest + dispatch in one process.
dev:
	$(CARGO) run -p herald-cli -- dev --port $(PORT)

## Python tools in project-local venvs: test and build tools in .venv, ministack in .venv-e2e
## (it pins a botocore the SAM CLI's pins clash with).
define make-venv
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
	  echo "python3 venv module missing: installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet --disable-pip-version-check -r $(2)
	touch $(1)/.installed
endef

$(VENV)/.installed: requirements-test.txt
	$(call make-venv,$(VENV),requirements-test.txt)

E2E_VENV ?= .venv-e2e
$(E2E_VENV)/.installed: requirements-e2e.txt
	$(call make-venv,$(E2E_VENV),requirements-e2e.txt)

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
	$(MAKE) --no-print-directory test-browser

## The web console in headless Chromium (playwright-core) against `herald dev` and a local
## receiver. Installs Debian's chromium (and npm) when missing, then the pinned npm lockfile.
BROWSER_TESTS := tests/browser
test-browser:
	@[ -x /usr/bin/chromium ] || { apt-get update -qq && apt-get install -y -qq chromium; }
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm ci --prefix $(BROWSER_TESTS) --no-audit --no-fund
	$(CARGO) build -p herald-cli
	cd $(BROWSER_TESTS) && HERALD_BIN=$(abspath $(TARGET))/debug/herald node --test console.test.mjs

## 10,000 events through the stack on moto with faulty receivers (not part of `make test`).
SOAK_EVENTS ?= 10000
soak: venv
	HERALD_SOAK_EVENTS=$(SOAK_EVENTS) $(CARGO) test -p herald-tests --test soak -- --nocapture

## Benchmarks (not part of `make test`): release builds of the bench, the local stack and the
## three functions, then every figure over BENCH_RUNS runs, and the cost meter's scenarios
## once each (`herald-bench cost` on moto). valgrind counts instructions.
BENCH_RUNS ?= 5
bench: venv
	@command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
	$(CARGO) build --release $(RELEASE_PACKAGES)
	$(TARGET)/release/herald-bench all --runs $(BENCH_RUNS) --bin-dir $(TARGET)/release --venv $(VENV)

## cargo fuzz on event parsing, matching and the URL guard, FUZZ_SECONDS each. Runs on the
## stable toolchain: RUSTC_BOOTSTRAP lets it take the sanitizer flags cargo fuzz passes.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := event_parse pattern_match url_check
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

## Release bootstraps with cargo lambda (zig cross-linker from the venv, no Docker), as
## `sam build` makes them. LAMBDA_ARCH=x86_64 builds for the template's other architecture.
LAMBDA_ARCH ?= arm64
LAMBDA_PACKAGES := -p herald-ingest -p herald-dispatch -p herald-api
LAMBDA_BINS := ingest dispatch api
# One release build for the host serves `make bench` and `make e2e-lambda` (same package set,
# so the same features and no rebuild between them).
RELEASE_PACKAGES := -p herald-bench -p herald-cli $(LAMBDA_PACKAGES)
CARGO_LAMBDA := PATH="$(abspath $(VENV))/bin:$$PATH" $(CARGO) lambda build --release $(LAMBDA_PACKAGES)
build: venv
	rustup target add aarch64-unknown-linux-gnu
	$(CARGO_LAMBDA) $(if $(filter x86_64,$(LAMBDA_ARCH)),--x86-64,--arm64)
	@for f in $(LAMBDA_BINS); do \
	  [ -f $(TARGET)/lambda/$$f/bootstrap ] || { echo "no bootstrap for $$f"; exit 1; }; \
	  printf "%-9s %-8s %9s bytes\n" $$f \
	    "$$(readelf -h $(TARGET)/lambda/$$f/bootstrap | sed -n 's/ *Machine: *//p' | cut -c1-8)" \
	    "$$(stat -c %s $(TARGET)/lambda/$$f/bootstrap)"; \
	done

## The deployed shape on ministack, which runs each bootstrap natively: the host's x86_64
## release build, zipped by the test (the same binaries `make bench` measures).
e2e-lambda: venv $(E2E_VENV)/.installed
	$(CARGO) build --release $(RELEASE_PACKAGES)
	$(E2E_VENV)/bin/python tests/e2e/lambda_e2e.py $(TARGET)/release

clean:
	rm -rf $(VENV) $(E2E_VENV) target
