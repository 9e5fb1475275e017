"""A gate that does not cry wolf, on real campaigns (issue #25 item 5): every ordered pair of the given demo
campaigns (identical programs, measured back to back) through `harness compare A B --fail-on regression
--threshold 5%`, counting the pairs that exit 1. Goal: 0 false fails in 20 A/A comparisons on this machine.

    .venv/bin/python benchmarks/aa_gate.py --results /work/stab CAMPAIGN CAMPAIGN ...   # e.g. stability.py's five
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--threshold", default="5%")
    ap.add_argument("campaigns", nargs="+")
    a = ap.parse_args()
    if len(a.campaigns) < 2:
        sys.exit("give at least two campaigns")
    rows, fails = [], 0
    for ca, cb in itertools.permutations(a.campaigns, 2):
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(a.results), "compare", ca, cb,
                               "--fail-on", "regression", "--threshold", a.threshold], capture_output=True, text=True)
        if proc.returncode not in (0, 1):
            sys.exit(f"compare {ca} {cb} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
        lines = [line for line in proc.stderr.splitlines() if line.startswith("regression:")]
        fails += proc.returncode == 1
        rows.append([ca, cb, "FAIL" if proc.returncode else "pass",
                     "; ".join(line.split(" @host:")[0].removeprefix("regression: ") + ": "
                               + line.split("(median B/A ")[1].split(",")[0] for line in lines
                               if "(median B/A " in line) or "-"])
    n = len(rows)
    write_table("aa_gate", "A gate that does not cry wolf: identical programs, every ordered pair of campaigns",
                f"python benchmarks/aa_gate.py --results {a.results} {' '.join(a.campaigns)}",
                ["A", "B", f"compare --fail-on regression --threshold {a.threshold}", "groups failed (B/A)"], rows,
                [f"{fails} of {n} A/A comparisons failed the gate (goal: 0 of 20)",
                 "each campaign is `harness demo` (student and full-size MobileBERT, fp32/int8/int4); A/A: the same "
                 "programs, so any failure is a false alarm"],
                ratios={"false fails": (fails / n, "lower")})
    print(f"{fails} of {n} A/A comparisons failed the gate")


if __name__ == "__main__":
    main()
