"""The runner's output is untrusted input. A runner (a real process, given with --runner-bin) that writes
invalid JSON, misses fields, reports NaN or negative latencies, too few iterations or a truncated outputs file fails
its run, stored with the reason: never a traceback, and later reports and compares still work."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from harness.store.db import ResultsStore

GOOD = {"runner": "fake", "load_ms": 1.0, "first_inference_ms": 1.0, "latencies_ms": [1.0, 1.1, 1.2],
        "peak_rss_kb": 1000, "num_examples": 8, "threads": 1}

CASES = {
    "invalid json": ("{not json", "not valid JSON"),
    "not an object": ("[1, 2, 3]", "not an object"),
    "no load_ms": (json.dumps({k: v for k, v in GOOD.items() if k != "load_ms"}), "no 'load_ms'"),
    "nan latency": (json.dumps(GOOD | {"latencies_ms": [1.0, float("nan"), 1.0]}), "latencies_ms[1] is nan"),
    "negative latencies": (json.dumps(GOOD | {"latencies_ms": [-1, -1, -1]}), "latencies_ms[0] is -1"),
    "string latency": (json.dumps(GOOD | {"latencies_ms": ["fast", 1, 1]}), "latencies_ms[0] is 'fast'"),
    "too few iterations": (json.dumps(GOOD | {"latencies_ms": [1.0]}), "fewer than the 3 asked for"),
    "bad rss": (json.dumps(GOOD | {"peak_rss_kb": -5}), "'peak_rss_kb' is -5"),
    "truncated outputs": (json.dumps(GOOD), "damaged outputs file"),
}


def fake_runner(tmp_path, result_text: str) -> str:
    """A runner binary stand-in: takes the real runner's flags, writes the given result and a 3-byte outputs file."""
    path = tmp_path / "fake_runner"
    tmp_path.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""#!{sys.executable}
import sys
args = sys.argv[1:]
opt = dict(zip(args[::2], args[1::2]))
open(opt["--result"], "w").write({result_text!r})
if "--outputs" in opt:
    open(opt["--outputs"], "wb").write(b"ET\\x00")
""")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture(scope="module")
def malformed_runs(tmp_path_factory, tiny):
    """Every case run once into one results folder (the program, which has no manifest, is inspected once per
    machine): {case: (the finished process, its stored record)}, the inspection's cache entry and its mtime after
    each run."""
    from common.files import cache_dir
    from program.pte import sha256_file

    program, _ = tiny
    root = tmp_path_factory.mktemp("malformed")
    results = root / "r"
    inspected = cache_dir("inspected") / f"{sha256_file(program)}.json"
    out, mtimes = {}, []
    for i, (case, (text, _)) in enumerate(CASES.items()):
        before = {r.run_id for r in ResultsStore(results).runs()}
        p = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), "run", "--program",
                            str(program), "--runner-bin", fake_runner(root / str(i), text), "--iterations", "3",
                            "--warmup", "0"], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "COLUMNS": "300"})
        new = [r for r in ResultsStore(results).runs() if r.run_id not in before]
        out[case] = (p, new)
        mtimes.append(inspected.stat().st_mtime_ns)
    return results, out, inspected, mtimes


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_runner_output_fails_the_run_and_is_stored(malformed_runs, case):
    _, reason = CASES[case]
    p, new = malformed_runs[1][case]
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert "Traceback" not in p.stdout + p.stderr
    [rec] = new
    assert rec.status == "failed" and reason in rec.error, rec.error
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]  # one line naming the run and why, beside progress
    assert len(errors) == 1 and rec.run_id in errors[0] and reason in errors[0], p.stderr
    assert all(ln.startswith("… ") for ln in lines if ln not in errors), p.stderr


def test_reports_and_listings_of_malformed_runs_still_work(malformed_runs, tmp_path, tiny):
    results, _, inspected, mtimes = malformed_runs
    # the nine runs of one program without a manifest inspected it once at most (a child process of seconds), not
    # nine times: its answer, kept by the program's sha256, was never written again
    assert len(mtimes) == len(CASES) and len(set(mtimes)) == 1
    # nor does a run of it into another results folder: the inspection is kept per machine, by the program's bytes
    subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path / "other"), "run", "--program",
                    str(tiny[0]), "--runner-bin", fake_runner(tmp_path, json.dumps(GOOD)), "--iterations", "3",
                    "--warmup", "0"], capture_output=True, text=True, timeout=300)
    assert inspected.stat().st_mtime_ns == mtimes[-1]
    for args in (["report"], ["runs", "list"], ["report", "--format", "html", "--output", str(tmp_path / "r.html")]):
        q = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), *args],
                           capture_output=True, text=True, timeout=300)
        assert q.returncode == 0 and "Traceback" not in q.stderr, (args, q.stderr)
        assert ("wrote" if "html" in args else "failed") in q.stdout.lower(), q.stdout


def test_scratch_folders_of_killed_runs_are_swept_by_the_next_run(tmp_path, tiny, malformed_runs):
    import tempfile
    from pathlib import Path

    program, _ = tiny
    stale = Path(tempfile.gettempdir()) / "harness-run-999999999-leftover"  # a pid no process has
    stale.mkdir(exist_ok=True)
    (stale / "inputs.bin").write_bytes(b"x" * 100)
    results, *_ = malformed_runs  # its program was inspected already
    p = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), "run", "--program",
                        str(program), "--runner-bin", fake_runner(tmp_path, json.dumps(GOOD)), "--iterations", "3",
                        "--warmup", "0"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 3 and "error: run" in p.stderr and "damaged outputs file" in p.stderr
    assert "damaged outputs file" not in p.stdout  # the reason is on stderr; stdout keeps the summary line
    assert not stale.exists()


def test_a_program_without_a_manifest_is_inspected_once(tmp_path, tiny):
    """Inspecting a foreign program costs a child process (seconds): the answer is kept by sha256 in a cache folder
    (`harness run`: $HARNESS_CACHE/inspected)."""
    import time

    from program import pte as prog_mod

    program, _ = tiny
    cache = tmp_path / "inspected"
    t0 = time.monotonic()
    first = prog_mod.inspect(program, cache_dir=cache)
    cold = time.monotonic() - t0
    t0 = time.monotonic()
    again = prog_mod.inspect(program, cache_dir=cache)
    warm = time.monotonic() - t0
    assert again == first and len(list(cache.glob("*.json"))) == 1
    assert warm < cold / 10  # no child process the second time
    # a damaged entry (a disk that filled while it was written by an older harness) is inspected again and replaced
    (entry,) = cache.glob("*.json")
    entry.write_text('{"methods": ')
    assert prog_mod.inspect(program, cache_dir=cache) == first
    assert json.loads(entry.read_text()) == first
