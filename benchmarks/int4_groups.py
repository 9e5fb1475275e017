"""Issue #27 item 3: does int4 pay against int8? Full-size MobileBERT (random weights), seq 128, 2 threads: the int8
program and int4 programs at several group sizes, timed in one interleaved run, then each profiled once so the table
names the XNNPACK kernel that runs its linears and what that kernel costs per inference.

    .venv/bin/python benchmarks/int4_groups.py [--groups 32,64,128,row] [--rounds 7] [--iterations 20]

The ratio column is the median over rounds of (this / int8) within each round: below 1.0, int4 is the faster.
Numerics are the export's check against fp32 eager on real rotten_tomatoes dev text (the manifest's)."""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import interleaved_rounds, round_ratio, write_table  # noqa: E402
from benchmarks.peers import Harness  # noqa: E402


def _profile(program: Path, threads: int, results: Path) -> dict:
    """One profiled run (ETDump): the linears' kernel name and ms per inference, and the XNNPACK total."""
    from harness.run import measure

    rec = measure.run(measure.RunRequest.of(program=program, threads=threads, samples=4, profile=True, warmup=3,
                                             iterations=20, tags={"benchmark": "int4_groups"}), results)
    ops = (rec.profile or {}).get("ops") or []
    fc = [o for o in ops if o["name"].startswith("Fully Connected")]
    return {"fc": "; ".join(o["name"] for o in fc) or "?", "fc_ms": sum(o["ms"] for o in fc),
            "xnnpack_ms": (rec.profile or {}).get("xnnpack_calls_ms_per_run")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilebert")
    ap.add_argument("--groups", default="32,64,128,row", help="int4 group sizes (`row`: one group per row)")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--out", default="int4_groups", help="results file name (benchmarks/results/NAME.md)")
    a = ap.parse_args()
    from common.console import silence_libraries

    silence_libraries()
    from harness.export.exporter import ExportRequest, export
    from harness.export.recipes import PER_ROW, RecipeOptions

    variants = {"int8": ("int8", 32)}
    for g in a.groups.split(","):
        size = PER_ROW if g.strip() == "row" else int(g)
        variants[f"int4 {'per-row' if size == PER_ROW else f'g{size}'}"] = ("int4", size)
    programs, manifests = {}, {}
    for label, (recipe, group) in variants.items():
        print(f"exporting {label} ...", flush=True)
        res = export(ExportRequest(model=a.model, recipe=recipe, seq_len=a.seq_len,
                                   options=RecipeOptions(group_size=group)), a.results)
        programs[label], manifests[label] = res.program, res.manifest
    contestants = {n: Harness(p, "native", a.threads, a.results) for n, p in programs.items()}
    names = list(contestants)
    per_round = interleaved_rounds(contestants, a.rounds, a.warmup, a.iterations, digits=2)
    profiles = {n: _profile(p, a.threads, a.results) for n, p in programs.items()}

    def to_int8(n: str) -> float:
        return round_ratio(per_round, n, "int8")

    rows = []
    for n in names:
        num, prof = manifests[n].numerics or {}, profiles[n]
        rows.append([n, f"{statistics.median(per_round[n]):.2f}", f"{min(per_round[n]):.2f}",
                     f"{max(per_round[n]):.2f}", f"{to_int8(n):.3f}", f"{programs[n].stat().st_size / 1e6:.1f}",
                     f"{num.get('median_rel_logit_error', float('nan')):.2e}", f"{num.get('top1_agreement', '?')}",
                     prof["fc"], f"{prof['fc_ms']:.2f}", f"{prof['xnnpack_ms'] or 0:.2f}"])
    best = min((n for n in names if n != "int8"), key=to_int8)
    notes = [
        f"fastest int4: {best}, {to_int8(best):.3f}x int8 (goal: no slower than int8, <= 1.0: "
        f"{'met' if to_int8(best) <= 1.0 else 'NOT met'}); the default --group-size 32: "
        + (f"{to_int8('int4 g32'):.3f}x" if "int4 g32" in per_round else "not measured"),
        f"{a.model} seq {a.seq_len}, batch 1, untrained random weights; {a.threads} threads; {a.rounds} rounds x "
        f"{a.iterations} timed iterations after {a.warmup} warmup per program per round, order rotated each round",
        "rel. logit error and agreement: the export's check against fp32 eager on real rotten_tomatoes dev text",
        "linear kernel / linear ms / XNNPACK ms: one profiled run (`harness run --profile`, ETDump) per program after "
        "the timed rounds, ms per inference",
    ]
    write_table(a.out, "int4 against int8: group size, kernel and speed, one interleaved run",
                "python benchmarks/int4_groups.py " + " ".join(sys.argv[1:]),
                ["program", "median ms", "min ms", "max ms", "ratio to int8", "size MB", "rel. logit error (median)",
                 "agreement", "linear kernel", "linear ms", "XNNPACK ms"], rows, notes,
                ratios={f"{n} / int8": (to_int8(n), "lower") for n in names if n != "int8"})


if __name__ == "__main__":
    main()
