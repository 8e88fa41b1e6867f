# Bothy: the two commands a newcomer needs are `make run` and `make test`.

BIND ?= 127.0.0.1:8080
DATA_DIR ?= ./data
CARGO ?= cargo
# nextest runs each test in its own process; plain `cargo test` works too.
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: run build test browser lint unit e2e fmt clean bench

## run: build the release binary and serve on $(BIND), saving boards in $(DATA_DIR)
run:
	$(CARGO) build --release --bin bothy
	./target/release/bothy serve --bind $(BIND) --data-dir $(DATA_DIR)

build:
	$(CARGO) build --bin bothy

## test: formatting, lints, then every test (the end-to-end tests start the real binary),
## then the browser tests
test: lint build
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace $(if $(CI),--profile ci,)
else
	$(CARGO) test --workspace
endif
	$(MAKE) --no-print-directory browser

## browser: the real page in Debian's chromium against target/debug/bothy (playwright-core).
## Needs /usr/bin/chromium and `npm ci` in tests/browser; `bash .ci/run` installs both.
## Screenshots go to target/screenshots/.
browser: build
	node --test --test-concurrency=1 --test-timeout=120000 tests/browser/

## bench: Bothy against a bare relay on this machine, scenarios S1-S6 x 3 (about 21 minutes);
## prints a table and writes bench-results/latest.json. See docs/performance.md.
bench:
	$(CARGO) build --release
	./target/release/bench $(BENCH_ARGS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

## fuzz: the property-based fuzz of message decoding and Board::apply (shared/tests/fuzz.rs)
## at 200,000 cases per property in a release build; `make test` runs a few thousand.
.PHONY: fuzz
fuzz:
	PROPTEST_CASES=200000 $(CARGO) test --release -p bothy-shared --test fuzz -- --nocapture
