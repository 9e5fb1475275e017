"""What `harness run` costs beyond its runner: the wall time of a whole `harness run --device host --timing quick`
(a fresh process, as a user runs it) minus the time the runner process itself ran.

    .venv/bin/python benchmarks/run_overhead.py [--program P.pte] [--runs 10] [--before GIT_REV]

Each run is a fresh `python -m harness.cli` process; inside it every shell command the host transport starts is
timed, and the runner's is told apart by its bundle's loader. The overhead is everything else: interpreter and
imports, checking the work folder and the bundle, reading the device before and after, writing the inputs,
summarising and storing the record, printing it. --before REV measures the same in a checkout of REV (a git
worktree) right beside, alternating, for a before/after in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_table  # noqa: E402

GOAL_S = 0.5  # issue #27: at most 0.5 s of wall time beyond the runner's own

CHILD = r"""
import sys, time
t0 = time.perf_counter()
import device_runners.local as L
orig, spent = L.run_shell, {"runner": 0.0, "shells": 0}
def timed(cmd, *a, **k):
    t = time.perf_counter()
    try:
        return orig(cmd, *a, **k)
    finally:
        if "ld-linux" in str(cmd) and "harness_runner" in str(cmd):
            spent["runner"] += time.perf_counter() - t
        spent["shells"] += 1
L.run_shell = timed
from harness.cli import main
sys.argv = ["harness", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("RESULT", spent["runner"], spent["shells"], file=sys.stderr)
"""


def one(root: Path, program: Path, results: Path) -> tuple[float, float, int]:
    """(wall s of the whole process, runner s, shell commands started) of one `harness run`."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, "--results", str(results), "run", "--program", str(program),
                        "--device", "host", "--timing", "quick"], cwd=root, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "HOME": str(Path.home())})
    wall = time.perf_counter() - t
    line = next((ln for ln in p.stderr.splitlines() if ln.startswith("RESULT ")), None)
    if p.returncode or line is None:
        sys.exit(f"harness run failed in {root}: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
    _, runner, shells = line.split()
    return wall, float(runner), int(shells)


def default_program() -> Path:
    """The demo student's int8 program (about 1 ms an inference): exported into a scratch store when missing."""
    store = Path(tempfile.gettempdir()) / "harness-run-overhead"
    found = sorted((store / "programs").glob("test-tiny-int8-*.pte"))
    if not found:
        subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(store), "export", "--model",
                        "test-tiny", "--quant", "int8", "--seq-len", "64"], cwd=ROOT, check=True,
                       capture_output=True)
        found = sorted((store / "programs").glob("test-tiny-int8-*.pte"))
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--program", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--before", default=None, metavar="GIT_REV")
    a = ap.parse_args()
    program = (a.program or default_program()).resolve()
    roots = {"now": ROOT}
    worktree = None
    if a.before:
        worktree = Path(tempfile.mkdtemp(prefix="harness-before-"))
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), a.before], cwd=ROOT, check=True,
                       capture_output=True)
        roots = {f"before ({a.before})": worktree, "now": ROOT}
    got: dict[str, list[tuple[float, float, int]]] = {k: [] for k in roots}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, root in roots.items():  # one uncounted run each: bundle built and installed, caches warm
                one(root, program, Path(tmp) / name)
            for _ in range(a.runs):  # alternating, so a slow minute falls on both
                for name, root in roots.items():
                    got[name].append(one(root, program, Path(tmp) / name))
    finally:
        if worktree:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)
    rows, over = [], {}
    for name, xs in got.items():
        wall = statistics.median(w for w, _, _ in xs)
        runner = statistics.median(r for _, r, _ in xs)
        over[name] = statistics.median(w - r for w, r, _ in xs)
        rows.append([name, f"{wall:.3f}", f"{runner:.3f}", f"{over[name]:.3f}", xs[0][2],
                     "yes" if over[name] <= GOAL_S else "no"])
    notes = [f"program: {program.name} ({program.stat().st_size / 1e6:.1f} MB); `harness run --program P --device "
             f"host --timing quick`, a fresh process each, median of {a.runs} (alternating when --before is given)",
             "overhead = the process's wall time minus the runner process's own; shell commands = processes the "
             "host transport started (the runner among them)"]
    if "now" in over and len(over) == 2:
        before = next(v for k, v in over.items() if k != "now")
        notes.append(f"overhead now / before: {over['now'] / before:.2f} ({before:.2f} s -> {over['now']:.2f} s)")
    write_table("run_overhead", "What harness run costs beyond its runner (host, --timing quick)",
                " ".join(["python benchmarks/run_overhead.py", *sys.argv[1:]]),
                ["code", "wall s", "runner s", "overhead s", "shell commands", f"overhead <= {GOAL_S} s"], rows,
                notes, ratios={"run_overhead_s": (over["now"], "lower")})


if __name__ == "__main__":
    main()
