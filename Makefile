# Two commands on a fresh machine: `make demo` (main job, host device, offline data) and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml requirements-data.txt scripts/venv.sh | sha256sum | cut -c1-12)
RESULTS ?= results
DEMO    ?=          # extra `harness demo` flags, e.g. make demo DEMO="--timing default" (2 s runs, as harness run times)

.PHONY: venv system-deps demo test test-slow bench clean

$(STAMP): pyproject.toml requirements-data.txt scripts/venv.sh
	bash scripts/venv.sh $(PY) $(VENV)  # with uv when the package index has it (fast), else pip
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# Debian packages for the emulated ARM64 device, the ssh and adb devices and the HTML check (root only; skipped
# otherwise). The demo runs on the host alone and needs none of them; a device that lacks one says which.
system-deps:
	@bash scripts/system-deps.sh

demo: venv
	$(BIN)/harness --results $(RESULTS) demo $(DEMO)

test: venv system-deps
	$(BIN)/lint-imports  # the layers in pyproject.toml: no upward import, no cycle
	$(BIN)/python -m pytest -q -n 3 --dist loadgroup --durations=15 tests  # 3 workers on 2 cores: many tests wait on processes; a module's xdist_group shares its fixtures on one worker

test-slow: venv system-deps
	HARNESS_SLOW=1 $(BIN)/python -m pytest -q tests -m slow

bench: venv system-deps
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build .pytest_cache
