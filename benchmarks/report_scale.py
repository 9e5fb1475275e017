"""Reports over a big store: 10,000 runs with raw samples (made here by a script), rendered as markdown and HTML, and
listed with `harness runs list`, each timed as a fresh CLI process.

Goals (issue #12): markdown under 2 s, HTML under 10 s, `runs list` under 1 s.

The store's shape is a year of nightly benchmarking: 10,000 runs = 1,000 campaigns x 2 recipes (fp32, int8) x 5
repeats, 50 samples per run, each run summarised at run time as `harness run` does.

    python benchmarks/report_scale.py [--runs 10000]
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

GOALS = {"report --format md": 2.0, "report --format html": 10.0, "runs list": 1.0}


def make_store(root: Path, runs: int, samples: int = 50) -> None:
    import numpy as np

    from harness.reports.table import fill_summaries
    from harness.run.stats import summarize
    from harness.store.db import ResultsStore
    from harness.store.record import RunRecord, model_identity

    rng = np.random.default_rng(0)
    store, batch = ResultsStore(root), []
    per_campaign = 10
    for i in range(runs):
        c, j = divmod(i, per_campaign)
        recipe = "fp32" if j < per_campaign // 2 else "int8"
        manifest = {"model": "mobilebert", "head": "sequence_classification", "num_labels": 2, "recipe": recipe,
                    "random_weights": True, "program_bytes": 98_000_000 if recipe == "fp32" else 37_800_000,
                    "recipe_options": {"group_size": 32, "quant_embedding": None, "keep_fp32": []}}
        lat = rng.lognormal(np.log(30.0 if recipe == "fp32" else 12.0), 0.03, samples).tolist()
        day = f"2026-{1 + c // 90 % 12:02d}-{1 + c % 28:02d}"
        batch.append(RunRecord(
            run_id=f"{i:012x}", created_at=f"{day}T02:{j:02d}:{i % 60:02d}+00:00", status="ok", device="host",
            model="mobilebert", model_id=model_identity(manifest), recipe=recipe, seq_len=128, runner="native",
            threads=2, manifest=manifest, random_weights=True, campaign=f"nightly-{c:04d}", timing="default",
            warmup=10, iterations=samples, latencies_ms=lat, latency=summarize(lat), load_ms=50.0,
            first_inference_ms=31.0, memory={"peak_rss_mb": 100.0, "program_mb": manifest["program_bytes"] / 2**20},
            tags={"branch": "main"}))
        if len(batch) == 500:
            store.add_many(batch)
            fill_summaries(store, {r.campaign for r in batch})  # as `harness run` does after its campaign
            batch = []
    if batch:
        store.add_many(batch)
        fill_summaries(store, {r.campaign for r in batch})


def timed(argv: list[str], runs: int) -> tuple[float, float]:
    """(the first call, the median of the calls after it)."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        out.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {p.stderr.strip()}")
    return out[0], statistics.median(out[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=4, help="timed CLI calls per command: the first, then a median")
    a = ap.parse_args()
    harness = [sys.executable, "-m", "harness.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        make_store(Path(tmp), a.runs)
        made = time.perf_counter() - t0
        size = (Path(tmp) / "runs.sqlite").stat().st_size / 2**20
        cases = {"report --format md": ["report", "--format", "md"],
                 "report --format html": ["report", "--format", "html", "--output", f"{tmp}/r.html"],
                 "runs list": ["runs", "list"]}
        rows, failed = [], []
        for name, args in cases.items():
            first, med = timed([*harness, "--results", tmp, *args], a.repeat)
            ok = med < GOALS[name]
            rows.append([f"`harness {name}`", f"{first:.2f}", f"{med:.2f}", f"{GOALS[name]:g}", "yes" if ok else "NO"])
            failed += [] if ok else [name]
    cpu = host_cpu_name() or "?"
    write_table("report_scale", f"Reports over a store of {a.runs:,} runs", "python benchmarks/report_scale.py",
                ["command", "first call s", f"median of the next {a.repeat - 1} s", "goal s", "meets goal"], rows,
                [f"CPU: {cpu}, {os.cpu_count()} cores", f"store: {a.runs:,} runs, 50 raw samples each, "
                 f"{a.runs // 10:,} campaigns of fp32 x5 + int8 x5 ({a.runs // 5:,} report rows), {size:.0f} MiB; "
                 f"made in {made:.0f} s by this script",
                 "the 2,000 pooled rows' summaries are computed when their runs are stored (as `harness run` and "
                 "`results import` do) and kept in the store, so the first report reads them too"],
                ratios={**{f"{r[0].strip('`')} first s": (float(r[1]), "lower") for r in rows},
                        **{f"{r[0].strip('`')} s": (float(r[2]), "lower") for r in rows}})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
