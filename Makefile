# `make test` and `make demo` are all the set-up a fresh machine needs: each creates .venv and
# installs what is missing (re-installs when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test lint docs demo bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check registers gateway tests
	$(BIN)/ruff format --check registers gateway tests
	$(BIN)/mypy

# Regenerate committed artifacts (tests fail when they drift).
docs: $(STAMP)
	$(BIN)/gx-gateway registers --format md > docs/registers.md
	$(BIN)/gx-gateway pgns > docs/pgns.md
	$(BIN)/gx-gateway config-docs > docs/config.md

demo: $(STAMP)
	$(BIN)/gx-gateway demo

bench: $(STAMP)
	$(BIN)/python tests/bench/modbus_bench.py
	$(BIN)/python tests/bench/modbus_micro.py
	$(BIN)/python tests/bench/sources_bench.py
	$(BIN)/python tests/bench/ws_bench.py
	$(BIN)/python tests/bench/meters_bench.py
	$(BIN)/python tests/bench/n2k_bench.py
	$(BIN)/python tests/bench/n2k_in_bench.py
	$(BIN)/python tests/bench/mqtt_bench.py

# Minutes, not in `make test`: 50 kill -9 rounds, a memory-flat soak under load, a client
# that never reads (docs/RELIABILITY.md).
soak: $(STAMP)
	GXGW_KILL_ROUNDS=50 $(BIN)/python -m pytest -q -p no:cacheprovider tests/protocol/test_kill9.py
	$(BIN)/python tests/bench/reliability_bench.py never-reader --seconds 10
	$(BIN)/python tests/bench/reliability_bench.py soak --seconds 300

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
