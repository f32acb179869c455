# Passgate: `make run` and `make test` are all a newcomer needs. Each target
# installs what is missing first (and skips what is already there).

SHELL := /bin/bash
.DEFAULT_GOAL := run

WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"/\1/p}' Cargo.lock)
TRUNK_VERSION := 0.21.14
CARGO_BIN := $(HOME)/.cargo/bin
# wasm-opt comes from npm's binaryen (tools/): Debian's is too old for
# the reference-types modules that rustc and wasm-bindgen now produce.
export PATH := $(CURDIR)/tools/node_modules/.bin:$(CARGO_BIN):$(PATH)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_UPDATED := .apt-updated
# The browser pages, one crate each over a shared core (frontend/): wasm32
# only, outside the workspace's default members.
FRONTEND_CRATES := passgate-ui passgate-approval passgate-account passgate-device
# The approval page's download in brotli bytes (tools/size-budget.mjs):
# 47,068 after the size rounds of docs/BENCHMARKS.md, within the 50 KB
# the page is allowed.
APPROVAL_PAGE_BUDGET := 50000

.PHONY: run test check bench build frontend server tools tools-wasm tools-browser tools-postgres e2e-deps lint unit frontend-unit size e2e clean

## Start Passgate in sandbox mode on http://localhost:8080 and print the demo tokens.
run: tools-wasm frontend
	cargo build --release --bin passgate
	@echo "Demo data and fresh tokens:"
	@./target/release/passgate demo
	@echo "Open http://localhost:8080 (walkthrough: README.md)."
	./target/release/passgate serve

## Everything: formatting and lints, unit, integration and browser end-to-end tests.
test: tools-wasm tools-browser tools-postgres frontend
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) frontend-unit
	$(MAKE) size
	$(MAKE) e2e

## rustfmt and clippy (warnings are errors) for the server and the wasm frontend.
lint:
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings
	@# One crate at a time: each must name the web-sys features it uses.
	for crate in $(FRONTEND_CRATES); do cargo clippy -p $$crate --all-targets --target wasm32-unknown-unknown -- -D warnings || exit; done

## The Rust tests on a throwaway PostgreSQL cluster: the store suite on
## both backends, then the API tests again on PostgreSQL.
unit: tools-postgres
	PASSGATE_TEST_REQUIRE_POSTGRES=1 tools/with-postgres.sh bash -c 'cargo test --all-targets && PASSGATE_TEST_BACKEND=postgres cargo test -p passgate --test api'

## The inner loop (a few minutes warm): lints, the unit tests (SQLite;
## the PostgreSQL cases say they were skipped) and the API tests on SQLite.
## `make test` runs everything, on both databases, in the browser too.
check:
	$(MAKE) lint
	cargo test --all-targets
	$(MAKE) frontend-unit

## The frontend crates' unit tests: natively, then the core's in headless
## Chromium (the JSON and WebAuthn conversions need a browser's JavaScript).
frontend-unit: tools-wasm tools-browser
	cargo test $(addprefix -p ,$(FRONTEND_CRATES))
	CHROMEDRIVER=$$(command -v chromedriver) CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
		cargo test -p passgate-ui --target wasm32-unknown-unknown

## The approval page's download (brotli) against its budget; needs `make frontend`.
size:
	node tools/size-budget.mjs frontend/dist $(APPROVAL_PAGE_BUDGET)

## The browser journeys, on SQLite, then on PostgreSQL.
e2e: e2e-deps tools-postgres
	cargo build --bin passgate
	cd e2e && PASSGATE_BIN=../target/debug/passgate npx playwright test
	tools/with-postgres.sh bash -c 'cd e2e && PASSGATE_E2E_BACKEND=postgres PASSGATE_BIN=../target/debug/passgate npx playwright test'

## Benchmark of the full passkey flow, of the page's size, and of the page's
## first visit on an emulated slow phone (see docs/BENCHMARKS.md).
bench: tools-wasm tools-browser tools-postgres frontend
	PASSGATE_PG_FSYNC=on tools/with-postgres.sh cargo bench --bench approvals
	e2e/bench/run-page.sh --runs 5
	e2e/bench/run-page.sh --device --runs 5

build: frontend server

# Three bundles: the approval page (frontend/dist), then the account area
# (frontend/dist/account) and the phone app (frontend/dist/device), each
# its own wasm: the approval page does not grow. Then the root page, plain
# HTML and the stylesheet (frontend/dist/home).
frontend: tools-wasm
	trunk build --release
	trunk build frontend/account.html --release=true --dist frontend/dist/account --public-url /account/
	trunk build frontend/device.html --release=true --dist frontend/dist/device --public-url /device/
	trunk build frontend/home.html --release=true --dist frontend/dist/home --public-url /home/

server:
	cargo build --release --bin passgate

tools: tools-wasm tools-browser tools-postgres

tools-wasm:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@trunk --version 2>/dev/null | grep -q "$(TRUNK_VERSION)" || cargo install trunk --version $(TRUNK_VERSION) --locked
	@wasm-bindgen --version 2>/dev/null | grep -q "$(WASM_BINDGEN_VERSION)" || cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)
	@[ -x tools/node_modules/.bin/wasm-opt ] || (cd tools && npm ci --no-audit --no-fund)

tools-browser: e2e-deps
	@command -v chromium >/dev/null || { $(MAKE) $(APT_UPDATED) && $(SUDO) apt-get install -y chromium; }
	@command -v chromedriver >/dev/null || { $(MAKE) $(APT_UPDATED) && $(SUDO) apt-get install -y chromium-driver; }

tools-postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(MAKE) $(APT_UPDATED) && $(SUDO) apt-get install -y postgresql; }

$(APT_UPDATED):
	$(SUDO) apt-get update
	@touch $@

# Every package of e2e/package.json: a node_modules from before one was
# added installs again.
e2e-deps:
	@for p in @playwright/test @axe-core/playwright @seriousme/openapi-schema-validator openapi-typescript openapi-fetch typescript; do [ -d e2e/node_modules/$$p ] || { cd e2e && npm ci --no-audit --no-fund; exit; }; done

clean:
	cargo clean
	rm -rf frontend/dist e2e/node_modules $(APT_UPDATED)
