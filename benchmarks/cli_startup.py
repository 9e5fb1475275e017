"""How fast the CLI answers: median wall time of 10 runs per command, beside `python -c pass` in the same run.

Goals (issue #11): --help, --version, devices and shell completion under 0.3 s; recipes under 0.4 s; report --format md
on a small store (the demo's shape: 2 recipes x 3 runs, 100 samples each) under 0.8 s.

    python benchmarks/cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_table  # noqa: E402
from device_runners.devinfo import host_cpu_name  # noqa: E402

GOALS = {"--help": 0.3, "--version": 0.3, "devices": 0.3, "completion": 0.3, "recipes": 0.4, "report --format md": 0.8}


def small_store(root: Path) -> None:
    """A store shaped like the demo's: fp32 and int8, three runs of 100 samples each."""
    import random

    from harness.run.stats import summarize
    from harness.store.db import ResultsStore
    from harness.store.record import RunRecord

    store, rng = ResultsStore(root), random.Random(0)
    for recipe, ms in (("fp32", 30.0), ("int8", 12.0)):
        for i in range(3):
            lat = [ms * (1 + 0.02 * rng.random()) for _ in range(100)]
            store.add(RunRecord(run_id=f"{recipe}-{i}", created_at=f"2026-12-01T00:00:0{i}+00:00", status="ok",
                                device="host", model="mobilebert", recipe=recipe, seq_len=128, runner="native",
                                threads=2, latencies_ms=lat, latency=summarize(lat), random_weights=True))


def timed(argv: list[str], env: dict[str, str], runs: int) -> float:
    out = []
    for _ in range(runs + 1):  # the first run warms the page cache and is not counted
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append(time.perf_counter() - t0)
    return statistics.median(out[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    harness = str(Path(sys.executable).with_name("harness"))
    with tempfile.TemporaryDirectory() as tmp:
        small_store(Path(tmp))
        env = {**os.environ, "HARNESS_RESULTS": tmp}
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "--help": [harness, "--help"],
            "--version": [harness, "--version"],
            "devices": [harness, "devices"],
            "recipes": [harness, "recipes"],
            "report --format md": [harness, "report", "--format", "md"],
        }
        rows, failed = [], []
        for name, argv in cases.items():
            med = timed(argv, env, a.runs)
            goal = GOALS.get(name)
            rows.append([f"`{name}`", f"{med:.3f}", f"{goal}" if goal else "", "" if goal is None else
                         ("yes" if med < goal else "NO")])
            failed += [name] if goal and med >= goal else []
        # shell completion: what bash asks for on each key press (`harness re<TAB>`)
        comp_env = {**env, "_HARNESS_COMPLETE": "bash_complete", "COMP_WORDS": "harness re", "COMP_CWORD": "1"}
        med = timed([harness], comp_env, a.runs)
        rows.append(["completion (`harness re<TAB>`)", f"{med:.3f}", "0.3", "yes" if med < 0.3 else "NO"])
        failed += ["completion"] if med >= 0.3 else []
    cpu = host_cpu_name() or "?"
    write_table("cli_startup", "CLI start-up time", "python benchmarks/cli_startup.py",
                ["command", "median s (10 runs)", "goal s", "meets goal"], rows,
                [f"CPU: {cpu}, {os.cpu_count()} cores; each command is a fresh process, median of {a.runs} after one "
                 "uncounted run", "report: a store of 2 recipes x 3 runs x 100 samples (the demo's shape)"],
                ratios={r[0].strip("`"): (float(r[1]), "lower") for r in rows})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
