# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint install proto router-heads docs bench clean system-deps

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first: the CPU wheel on disk; otherwise pip picks a multi-gigabyte CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[orchestrator,offline-models,dev]'
	touch $(STAMP)

install: $(STAMP)

# dig (for the mDNS interoperability test), iproute2 (network namespaces), tmux (covey chat's real-terminal test).
system-deps:
	@command -v dig >/dev/null && command -v ip >/dev/null && command -v tmux >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsutils iproute2 tmux >/dev/null)

demo: install
	COVEY_DATA_DIR=$${COVEY_DATA_DIR:-$(CURDIR)/.covey-data} $(BIN)/covey demo

test: install system-deps lint
	$(BIN)/pytest -q -p no:cacheprovider tests

# Static checks (ruff's rules are in pyproject.toml).
lint: install
	$(BIN)/ruff check src tests bench examples scripts

proto: $(BIN)/python
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=src --pyi_out=src --grpc_python_out=src protos/covey/v1/node.proto

# The router heads shipped in the package, fitted on the shipped examples (a test fails when stale).
router-heads: install
	$(BIN)/python scripts/ship_router_heads.py

# The generated reference pages (tests fail when they are stale).
docs: install
	$(BIN)/python -m covey.settings_cli > docs/config.md
	$(BIN)/python -m covey.cli_json > docs/json.md

bench: install
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .covey-data build src/*.egg-info
