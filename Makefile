# Bothy: the two commands a newcomer needs are `make run` and `make test`.

BIND ?= 127.0.0.1:8080
DATA_DIR ?= ./data
CARGO ?= cargo
# nextest runs each test in its own process; plain `cargo test` works too.
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: run build test lint unit e2e fmt clean

## run: build the release binary and serve on $(BIND), saving boards in $(DATA_DIR)
run:
	$(CARGO) build --release --bin bothy
	./target/release/bothy serve --bind $(BIND) --data-dir $(DATA_DIR)

build:
	$(CARGO) build --bin bothy

## test: formatting, lints, then every test (the end-to-end tests start the real binary)
test: lint build
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace $(if $(CI),--profile ci,)
else
	$(CARGO) test --workspace
endif

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
