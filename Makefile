# ddbridge — the two commands: `make demo` (a migration on the embedded local stack) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DDBRIDGE := $(BIN)/ddbridge
export DDBRIDGE_CONFIG ?= $(CURDIR)/examples/payments/ddbridge.toml
ROWS ?= 150000
PYTEST_ARGS ?=

.PHONY: install demo test unit integration lint docs stack-up stack-down stack-status bench faults mutants clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

stack-up: install
	$(DDBRIDGE) stack up

stack-down:
	@if [ -f .stack/pids/bridge.pid ]; then kill $$(cat .stack/pids/bridge.pid) 2>/dev/null || true; rm -f .stack/pids/bridge.pid; fi
	@test -x $(DDBRIDGE) && $(DDBRIDGE) stack down || true

stack-status: install
	$(DDBRIDGE) stack status

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ddbridge bridge stream backfill reconcile connectors ops examples bench tests
	$(BIN)/lint-imports

# The README's configuration reference, generated from the pydantic models.
docs: install
	$(BIN)/python -m bridge.config_doc --write README.md

unit: install
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

integration: stack-up
	$(BIN)/pytest -q tests/integration $(PYTEST_ARGS)

# Everything CI runs: lint, then all tests against the real local stack (started if needed).
test: lint stack-up
	$(BIN)/pytest -q -ra tests $(PYTEST_ARGS)

# The demo: a whole migration of the payments example on the local stack (examples/payments/demo.py):
# stack, load, validate, init, bridge in the background, backfill under live traffic, reconcile.
# `make demo CONVERTER=avro`: the same migration with Debezium publishing Avro through the schema registry.
demo: install
	$(BIN)/python -m examples.payments.demo --config $(CURDIR)/examples/payments/ddbridge.toml --rows $(ROWS) \
		$(if $(CONVERTER),--converter $(CONVERTER))

# Mutation testing of the pure core (write rules, codec, mapping, keyset SQL, plan, comparison) against
# the unit suite; [tool.mutmut] in pyproject.toml. Slow: run by hand, not by CI. Survivors: mutmut results.
mutants: install
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

# The fault suite (not a test: minutes per scenario): a migration under live traffic through DynamoDB
# outages, throttling, latency, lost answers, connection resets, Kafka/Connect/PostgreSQL restarts and
# kill -9; writes bench/results/faults.md. `make faults FAULTS=dynamodb-outage,kafka-outage` for some.
faults: stack-up
	$(BIN)/python -m bench.faults --rows $(or $(FAULT_ROWS),5000) $(if $(FAULTS),--only $(FAULTS))

# Benchmarks (not tests): ratios against baselines measured in the same run, under bench/results/.
bench: stack-up
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench.backfill_bench --rows $(or $(BENCH_ROWS),10000) --guide-scale-rows 500000
	$(BIN)/python -m bench.stream_bench --seconds $(or $(BENCH_SECONDS),60) --backlog $(or $(BENCH_BACKLOG),20000)
	$(BIN)/python -m bench.reconcile_bench --sizes $(or $(BENCH_SIZES),100000 500000)
	$(BIN)/python -m bench.repair_bench --rows $(or $(BENCH_REPAIR_ROWS),50000)
	$(BIN)/python -m bench.decode_bench --events $(or $(BENCH_DECODE_EVENTS),20000)
	$(BIN)/python -m bench.chart

clean: stack-down
	rm -rf .stack $(VENV) *.egg-info mutants
