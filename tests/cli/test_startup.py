"""The CLI starts without the heavy libraries: they are imported where they are used (the start-up goals)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "scipy", "pandas", "plotly", "executorch", "torchao", "transformers")


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in json.loads(out.splitlines()[-1])}


def test_importing_the_cli_loads_no_heavy_library():
    loaded = _loaded_after("import harness.cli")
    assert not loaded & set(HEAVY), f"harness.cli imports {sorted(loaded & set(HEAVY))} at start-up"


def test_help_recipes_and_devices_load_no_heavy_library():
    for argv in (["--help"], ["recipes"], ["devices"], ["--version"]):
        code = ("import sys\nfrom harness.cli import cli\n"
                f"try:\n    cli.main({argv!r}, standalone_mode=False)\nexcept SystemExit:\n    pass")
        loaded = _loaded_after(code)
        assert not loaded & set(HEAVY), f"harness {' '.join(argv)} imports {sorted(loaded & set(HEAVY))}"


def test_markdown_report_loads_neither_pandas_nor_scipy(tmp_path):
    from harness.run.stats import summarize
    from harness.store.db import ResultsStore
    from harness.store.record import RunRecord

    lat = [10.0 + 0.01 * i for i in range(50)]
    for i in range(2):
        ResultsStore(tmp_path).add(RunRecord(run_id=f"r{i}", created_at=f"2026-12-01T00:00:0{i}+00:00", status="ok",
                                             device="host", model="mobilebert", recipe="fp32", seq_len=128,
                                             runner="native", threads=2, latencies_ms=lat, latency=summarize(lat)))
    code = (f"from harness.cli import cli\ntry:\n    cli.main(['--results', {str(tmp_path)!r}, 'report'], "
            "standalone_mode=False)\nexcept SystemExit:\n    pass")
    loaded = _loaded_after(code)
    assert not loaded & {"pandas", "scipy", "torch", "plotly"}, sorted(loaded & {"pandas", "scipy"})


def test_the_projects_venv_writes_bytecode_even_where_the_environment_says_not_to(tmp_path):
    """scripts/venv.sh: without .pyc files every process compiles torch from source (twice the start-up); a machine
    with PYTHONDONTWRITEBYTECODE set (this one's sandbox) would pay that in every test and export worker."""
    venv = Path(__file__).resolve().parents[2] / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        pytest.skip("not the project's .venv (make test and make demo make it with scripts/venv.sh)")
    (tmp_path / "probe_mod.py").write_text("X = 1\n")
    env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", "import probe_mod"], env=env, check=True)
    assert list((tmp_path / "__pycache__").glob("probe_mod.*.pyc"))
