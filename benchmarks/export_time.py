"""What harness/fast_lowering saves: the full-size export of one recipe with and without it, stage by stage, and
proof that the program is the same (sha256).

    .venv/bin/python benchmarks/export_time.py [--recipe int8] [--model mobilebert] [--seq-len 128]

Each mode runs in its own process (its peak RSS is its own), one after the other (never side by side).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_table  # noqa: E402

# ExecuTorch's lowering as it is; inside harness.export.fast_lowering.faster_lowering but with every recompile writing
# its code (as before defer_codegen); the same with all of faster_lowering
MODES = ("plain", "fast-eager-codegen", "fast")


def export_one(a, mode: str) -> dict:
    """Child process: lower and serialize like harness.export.exporter does, timing each stage."""
    import torch

    torch.set_num_threads(2)
    from harness.export import fast_lowering
    from common.console import silence_libraries
    from harness.export.exporter import ProgramModule, example_inputs
    from harness.export.recipes import RecipeOptions, get_recipe, serialize
    from model.config import get_preset
    from model.mobilebert import MobileBertForSequenceClassification

    silence_libraries()
    stages = stage_timers()
    savings = []
    real = fast_lowering.faster_lowering

    @contextlib.contextmanager
    def counted():  # Recipe.lower and serialize look faster_lowering up at call time: this sees every block
        with real() as saved:
            yield saved
        savings.append(saved.summary())

    fast_lowering.faster_lowering = contextlib.nullcontext if mode == "plain" else counted
    if mode == "fast-eager-codegen":
        fast_lowering.defer_codegen = lambda: contextlib.nullcontext(fast_lowering.DeferredCode())
    torch.manual_seed(0)
    cfg = get_preset(a.model)
    model = ProgramModule(MobileBertForSequenceClassification(cfg), "sequence_classification").eval()
    inputs = example_inputs(a.seq_len, cfg.vocab_size)
    t0 = time.perf_counter()
    edge = get_recipe(a.recipe).lower(model, inputs, RecipeOptions())
    t1 = time.perf_counter()
    program = serialize(edge).buffer
    t2 = time.perf_counter()
    return {"lower_s": t1 - t0, "serialize_s": t2 - t1, "total_s": t2 - t0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "sha256": hashlib.sha256(program).hexdigest(), "bytes": len(program),
            "saved": {k: sum(d[k] for d in savings) for k in (savings[0] if savings else {})},
            "stages": dict(stages)}


# (label, module, attribute path): the stages of one export, each timed where it is entered from outside the others
STAGES = (
    ("quantize", "harness.export.recipes", "Recipe.prepare"),
    ("torch.export", "torch.export", "export"),
    ("to edge", "executorch.exir.program._program", "_gen_edge_manager_for_partitioners"),
    ("edge passes", "executorch.exir.program._program", "EdgeProgramManager.transform"),
    ("partition + XNNPACK", "executorch.exir.program._program", "EdgeProgramManager.to_backend"),
    ("of which XNNPACK passes", "executorch.backends.xnnpack._passes", "XNNPACKPassManager.transform"),
)


def stage_timers() -> dict[str, float]:
    """Seconds spent in each of STAGES, filled as the export runs (a call inside its own stage counts once)."""
    import functools
    import importlib

    spent = {label: 0.0 for label, _, _ in STAGES}
    depth = dict.fromkeys(spent, 0)

    def timed(label, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            depth[label] += 1
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[label] -= 1
                if depth[label] == 0:
                    spent[label] += time.perf_counter() - t
        return wrapper

    for label, module, path in STAGES:
        owner = importlib.import_module(module)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        setattr(owner, name, timed(label, getattr(owner, name)))
    return spent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="int8")
    ap.add_argument("--model", default="mobilebert")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print("RESULT " + json.dumps(export_one(a, a.one)))
        return
    got = {}
    for mode in MODES:
        cmd = [sys.executable, __file__, "--one", mode, "--recipe", a.recipe, "--model", a.model,
               "--seq-len", str(a.seq_len)]
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if p.returncode or line is None:
            sys.exit(f"{mode} export failed: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
        got[mode] = json.loads(line.removeprefix("RESULT "))
    plain, fast = got["plain"], got["fast"]
    labels = [label for label, _, _ in STAGES]
    rows = [[mode, *(f"{r['stages'][k]:.1f}" for k in labels), f"{r['lower_s']:.1f}", f"{r['serialize_s']:.1f}",
             f"{r['total_s']:.1f}", f"{r['peak_rss_mb']:.0f}", r["sha256"][:16], r["bytes"]] for mode, r in got.items()]
    eager = got["fast-eager-codegen"]
    same = len({r["sha256"] for r in got.values()}) == 1
    notes = [f"fast / plain export time: {fast['total_s'] / plain['total_s']:.2f} "
             f"({plain['total_s']:.0f} s -> {fast['total_s']:.0f} s)",
             f"deferred code generation alone: fast / fast-eager-codegen {fast['total_s'] / eager['total_s']:.2f} "
             f"({eager['total_s']:.0f} s -> {fast['total_s']:.0f} s)",
             "same program, byte for byte, in every mode" if same else "PROGRAMS DIFFER: fast_lowering changed the output",
             "counted in the fast export: " + ", ".join(f"{k} {v}" for k, v in fast["saved"].items()),
             "lower = quantize + torch.export + to_edge_transform_and_lower (what `harness export` times before "
             "serializing); serialize = to_executorch; plain runs both stages exactly as ExecuTorch and torch "
             "ship them; untrained (random) weights, which do not change the work",
             "stages (s): quantize = Recipe.prepare (eager quantization, rewrites); to edge = to_edge's "
             "decompositions and edge-dialect checks; edge passes = the XNNPACK transform passes run before "
             "partitioning; partition + XNNPACK = to_backend (partitioning and XNNPACK's preprocess), of which "
             "XNNPACK passes = its own pass manager; what lower leaves over them is to_edge_transform_and_lower's "
             "own bookkeeping"]
    write_table(f"export_time_{a.recipe}", f"Export time with and without fast_lowering, {a.model} {a.recipe}, "
                f"seq {a.seq_len}", " ".join(["python benchmarks/export_time.py", *sys.argv[1:]]),
                ["mode", *labels, "lower s", "serialize s", "total s", "peak RSS MB", "sha256", "bytes"], rows, notes,
                ratios={"fast_over_plain": (fast["total_s"] / plain["total_s"], "lower"),
                        "deferred_codegen_over_eager": (fast["total_s"] / eager["total_s"], "lower"),
                        "fast_export_s": (fast["total_s"], "lower")})
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
