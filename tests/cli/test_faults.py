"""Faults case by case (docs/faults.md maps every case to its test): each refusal is the real CLI in a subprocess
giving exit 2, no traceback, one `error:` line on stderr naming the culprit (the other stderr lines, if any, are
progress lines starting with '…'), an intact store, and no file written anywhere."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store.db import ResultsStore
from harness.store.record import RunRecord

HARNESS = [sys.executable, "-m", "harness.cli"]


def harness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_RPI")}  # no ssh address from outside
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=300,
                          env={**base, "COLUMNS": "300", **(env or {})})


def the_error(p: subprocess.CompletedProcess, code: int = 2) -> str:
    """The one error line of a refused command (asserting the exit code, no traceback, nothing else said)."""
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stdout + p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, p.stderr
    assert all(ln.startswith("… ") for ln in lines if ln not in errors), p.stderr  # progress only, besides it
    return errors[0]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def store(tmp_path) -> Path:
    """A results folder holding one earlier run: every refusal must leave it as it was."""
    results = tmp_path / "results"
    ResultsStore(results).add(RunRecord(run_id="earlier", created_at="2026-12-01T00:00:00+00:00", status="ok",
                                        device="host"))
    return results


def _csv(tmp_path: Path, name: str, header: str, label) -> Path:
    f = tmp_path / name
    f.write_text(header + "\n" + "\n".join(f"review number {i},{label(i)}" for i in range(200)) + "\n")
    return f


def _catalog(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "devices.toml"
    f.write_text(text)
    return f


# (case in docs/faults.md, extra run arguments (callables get tmp_path), what the one line must name)
RUN_REFUSALS = {
    "iterations-huge": (["--iterations", "99999999999"], ["--iterations 99999999999", "1,000,000"]),
    "warmup-huge": (["--warmup", "99999999999"], ["--warmup 99999999999", "100,000"]),
    "min-seconds-inf": (["--min-seconds", "inf"], ["--min-seconds inf"]),
    "timeout-nan": (["--timeout", "nan"], ["--timeout nan"]),
    "warmup-seconds-negative": (["--warmup-seconds", "-1"], ["--warmup-seconds -1"]),
    "max-seconds-nan": (["--max-seconds", "nan"], ["--max-seconds nan"]),
    "max-seconds-below-floor": (["--max-seconds", "1", "--min-seconds", "2"],
                                ["--max-seconds 1 is shorter than --min-seconds 2"]),
    "samples-huge": (["--samples", "100000000"], ["--samples 100000000", "100,000"]),
    "threads-1000": (["--threads", "1000"], ["--threads 1000", "256"]),
    "threads-over-cores": (["--threads", str((os.cpu_count() or 2) + 1)], ["cores", "--oversubscribe"]),
    "program-with-export-flags": (["--quant", "int8", "--seq-len", "128", "--model", "mobilebert"],
                                  ["--program", "--quant", "--seq-len", "--model"]),  # the flags as typed
    "iterations-not-a-number": (["--iterations", "abc"], ["--iterations", "'abc'"]),
    "labels-fractional": (lambda t: ["--task", str(_csv(t, "frac.csv", "text,label", lambda i: 0.5 + i % 2))],
                          ["frac.csv", ".5 (example", "is not an integer"]),
    "labels-strings": (lambda t: ["--task", str(_csv(t, "str.csv", "text,label", lambda i: "pos" if i % 2 else "neg"))],
                       ["str.csv", "is not a class number", "found neg, pos"]),
    "missing-text-column": (lambda t: ["--task", str(_csv(t, "col.csv", "review,label", lambda i: 1))],
                            ["col.csv", "no column 'text'", "review, label"]),
    "catalog-qemu-on-x86_64": (lambda t: ["--device", "b", "--devices-file",
                                          str(_catalog(t, '[b]\nabi = "x86_64"\ntransport = "qemu"\n'))],
                               ["devices.toml", "[b]", 'abi must be "arm64-v8a"']),
    "catalog-timeout-abc": (lambda t: ["--device", "b", "--devices-file", str(_catalog(
        t, '[b]\nabi = "arm64-v8a"\ntransport = "ssh"\naddress = "a@h"\n[b.options]\nconnect_timeout = "abc"\n'))],
                            ["devices.toml", "connect_timeout", "'abc'"]),
    "ssh-without-address": (["--device", "rpi5"], ["rpi5", "no ssh address", "--address"]),
    "affinity-abc": (["--affinity", "abc"], ["--affinity 'abc'"]),
}


@pytest.mark.parametrize("case", list(RUN_REFUSALS))
def test_run_refusals_store_nothing_and_write_nothing(case, tiny_export, store, tmp_path):
    _, res = tiny_export
    extra, names = RUN_REFUSALS[case]
    extra = extra(tmp_path) if callable(extra) else extra
    before = tree(tmp_path)
    base = [opt for flag, value in (("--iterations", "3"), ("--warmup", "0")) if flag not in extra
            for opt in (flag, value)]  # each option once: a repeated one is refused for being repeated
    line = the_error(harness("--results", str(store), "run", "--program", str(res.program), *base, *extra))
    for name in names:
        assert name in line, line
    assert [r.run_id for r in ResultsStore(store).runs()] == ["earlier"]  # configuration mistakes are not runs
    assert tree(tmp_path) == before


def test_more_threads_than_cores_run_with_oversubscribe(tiny_export, tmp_path):
    _, res = tiny_export
    n = (os.cpu_count() or 2) + 1
    p = harness("--results", str(tmp_path / "r"), "run", "--program", str(res.program), "--iterations", "2",
                "--warmup", "0", "--threads", str(n), "--oversubscribe")
    assert p.returncode == 0, p.stderr
    [rec] = ResultsStore(tmp_path / "r").runs()
    assert rec.threads == n and rec.status in ("ok", "invalid")


@pytest.mark.parametrize("where", ["under-a-file", "in-proc"])
@pytest.mark.parametrize("verb", ["run", "export"])
def test_a_results_folder_that_cannot_be_made_is_refused_first(where, verb, tiny_export, tmp_path):
    """Before a run measures or an export lowers: run said so after measuring, export gave a traceback."""
    _, res = tiny_export
    (tmp_path / "afile").write_text("x")
    results = tmp_path / "afile" / "r" if where == "under-a-file" else Path(f"/proc/harness-test-{os.getpid()}")
    args = (["run", "--program", str(res.program), "--iterations", "3", "--warmup", "0"] if verb == "run" else
            ["export", "--model", "test-tiny", "--seq-len", "16", "--numerics-task", "none"])
    before = tree(tmp_path)
    line = the_error(harness("--results", str(results), *args))
    assert str(results.parent if where == "under-a-file" else "/proc") in line
    assert tree(tmp_path) == before and not results.exists()


def test_an_unreadable_record_is_named_and_the_rest_still_work(tmp_path):
    """One record that cannot be parsed: report skips it, runs list lists it with a warning, compare naming it is one
    line (it was a traceback), and nothing in the store changes."""
    from tests.support.factories import rec

    results = tmp_path / "r"
    runs = [rec("fp32", ms=30.0, seed=1, campaign="c"), rec("int8", ms=12.0, seed=2, campaign="c")]
    ResultsStore(results).add_many(runs)
    bad, good = runs[0].run_id, runs[1].run_id
    con = sqlite3.connect(results / "runs.sqlite")
    con.execute("UPDATE runs SET record = '{broken' WHERE run_id = ?", (bad,))
    con.commit()
    con.close()
    before = tree(tmp_path)
    p = harness("--results", str(results), "report")
    assert p.returncode == 0 and f"skipping run {bad}" in p.stderr and "1 run" in p.stdout
    p = harness("--results", str(results), "runs", "list")
    assert p.returncode == 0 and bad in p.stdout and good in p.stdout, p.stderr
    assert f"warning: run {bad}'s stored record is unreadable" in p.stderr and "Traceback" not in p.stderr
    line = the_error(harness("--results", str(results), "compare", bad, good))
    assert bad in line and "unreadable" in line and f"harness runs rm {bad}" in line
    assert tree(tmp_path) == before


def test_compare_refuses_a_run_whose_runner_output_was_malformed(tmp_path):
    """The issue's negative latencies printed 'B is faster: 0.00x'; such a run is stored failed and compare says so."""
    results = tmp_path / "r"
    ok = RunRecord(run_id="okrun", created_at="2026-12-01T00:00:00+00:00", status="ok", device="host",
                   latencies_ms=[10.0, 10.1, 10.2])
    broken = RunRecord(run_id="badrun", created_at="2026-12-01T00:01:00+00:00", status="failed", device="host",
                       error="runner on host wrote a malformed result: latencies_ms[0] is -1")
    ResultsStore(results).add_many([ok, broken])
    line = the_error(harness("--results", str(results), "compare", "okrun", "badrun"))
    assert "badrun" in line and "latencies_ms[0] is -1" in line and "nothing to compare" in line


def test_a_checkpoint_whose_id2label_keys_are_not_class_numbers_is_one_line(tmp_path):
    """It was `ValueError: invalid literal for int()` from deep inside the config."""
    import json

    from model.config import get_preset
    from model.mobilebert import MobileBertForSequenceClassification
    from model.weights import save_checkpoint

    ck = tmp_path / "ck"
    save_checkpoint(MobileBertForSequenceClassification(get_preset("test-tiny")), ck)
    config = json.loads((ck / "config.json").read_text())
    (ck / "config.json").write_text(json.dumps(config | {"id2label": {"zero": "NEG", "one": "POS"}}))
    before = tree(tmp_path)
    line = the_error(harness("--results", str(tmp_path / "r"), "export", "--checkpoint", str(ck),
                             "--numerics-task", "none"))
    assert "config.json" in line and "id2label key 'zero'" in line
    assert tree(tmp_path) == before


def test_inputs_are_sized_before_they_are_made():
    """--samples within its bound can still ask for more memory than the inputs file may take: refused from the
    program's input shapes, before one example is allocated (--samples 100000000 grew to a MemoryError)."""
    from common.errors import BadInput
    from program.manifest import InputSpec
    from harness.run.request import MAX_INPUT_BYTES, check_input_size

    specs = [InputSpec(n, "int64", [1, 4096]) for n in ("input_ids", "attention_mask", "token_type_ids")]
    per = 3 * 4096 * 8
    check_input_size(specs, MAX_INPUT_BYTES // per)  # fits
    with pytest.raises(BadInput, match=r"--samples 100000: the inputs would take 9\.2 GiB \(limit 2 GiB\)"):
        check_input_size(specs, 100_000)
