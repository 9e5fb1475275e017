"""Issue #17: our programs beside their peers in one interleaved run, and the hardware's floor.

    .venv/bin/python benchmarks/peers.py [--rounds 7] [--iterations 10] [--recipes fp32,fp16,int8,int4] [--baseline]

Contestants, full-size MobileBERT (random weights), seq 128, batch 1, 2 threads: our programs through the native
runner and through ExecuTorch's Python runtime (`harness run --runner native|python`), ONNX Runtime fp32
(torch.onnx.export of the same eager model) and its `quantize_dynamic` int8, torch eager fp32. With --baseline, the
fp32 and int8 programs exported without the graph rewrites (harness.export.rewrites) run too, so before/after is a
ratio within the same rounds. Each round runs every contestant once (warmup, then `iterations` timed inferences, the
median kept), in an order rotated each round; a ratio is taken within each round and the median of those is quoted.

The floor: the model's FLOP count from its own shapes (torch's FlopCounterMode on the eager forward), over
threads x clock x fp32 FLOP per cycle, with the clock and vector width read from /proc/cpuinfo (FMA units per core
cannot be read there: --fma-units, default 2, as on every x86 core with AVX2 or AVX-512 FMA of the last decade).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import interleaved_rounds, round_ratio, time_ms, write_table  # noqa: E402

INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]


def cpu_facts(fma_units: int) -> dict:
    """Model name, clock and fp32 FLOP per cycle per core as this machine reports them."""
    text = Path("/proc/cpuinfo").read_text()
    first = text.split("\n\n")[0]
    field = lambda k: (re.search(rf"^{k}\s*:\s*(.*)$", first, re.M) or [None, ""])[1].strip()  # noqa: E731
    flags = set(field("flags").split())
    mhz = float(field("cpu MHz") or 0)
    max_khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if max_khz.is_file():  # a governor's current clock wanders: the top clock is what the floor assumes
        mhz = int(max_khz.read_text()) / 1000
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags or "avx" in flags else 4
    fma = 2 if "fma" in flags or "avx512f" in flags else 1  # a fused multiply-add is 2 FLOP
    return {"model": field("model name"), "mhz": mhz, "lanes": lanes, "fma_units": fma_units,
            "flop_per_cycle": fma_units * lanes * fma, "avx512": "avx512f" in flags,
            "amx": "amx_int8" in flags, "avx512_fp16": "avx512_fp16" in flags, "vnni": "avx512_vnni" in flags
            or "avx_vnni" in flags}


def model_flop(model_name: str, seq_len: int) -> dict:
    """FLOP of one inference from the model's own shapes, by aten op (matrix products only: the rest is noise)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from harness.export.exporter import ExportRequest, ProgramModule, build_model, example_inputs

    model, head, cfg, _ = build_model(ExportRequest(model=model_name, seq_len=seq_len))
    wrapper = ProgramModule(model, head).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        wrapper(*example_inputs(seq_len, cfg["vocab_size"]))
    by_op = {str(k): v for k, v in fc.get_flop_counts()["Global"].items()}
    return {"total": fc.get_total_flops(), "by_op": by_op, "wrapper": wrapper, "vocab": cfg["vocab_size"]}


class Eager:
    def __init__(self, wrapper, inputs, threads):
        import torch

        torch.set_num_threads(threads)
        self.wrapper, self.inputs, self.torch = wrapper, inputs, torch

    def __call__(self, warmup, iterations):
        with self.torch.no_grad():
            return time_ms(lambda: self.wrapper(*self.inputs), warmup, iterations)


class Ort:
    def __init__(self, path: Path, inputs, threads):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # its idle workers spin by default, taking the cores from whichever contestant runs next
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        names = {i.name for i in self.sess.get_inputs()}  # the exporter drops inputs the graph never reads
        self.feed = {n: t.numpy() for n, t in zip(INPUT_NAMES, inputs) if n in names}

    def __call__(self, warmup, iterations):
        return time_ms(lambda: self.sess.run(None, self.feed), warmup, iterations)


class Harness:
    """One `harness run` of a program (native runner or Python runtime): its median latency."""

    def __init__(self, program: Path, runner: str, threads: int, results: Path):
        self.program, self.runner, self.threads, self.results = program, runner, threads, results

    def __call__(self, warmup, iterations):
        from harness.run import measure

        rec = measure.run(measure.RunRequest.of(program=self.program, runner=self.runner, warmup=warmup,
                                             iterations=iterations, threads=self.threads, samples=4,
                                             tags={"benchmark": "peers"}), self.results)
        if rec.status == "failed":
            raise SystemExit(f"{self.runner} run of {self.program.name} failed: {rec.error}")
        return rec.latencies_ms


def onnx_models(wrapper, inputs, work: Path) -> tuple[Path, Path]:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    f32, q8 = work / "mobilebert.onnx", work / "mobilebert.int8.onnx"
    with torch.no_grad():
        torch.onnx.export(wrapper, tuple(inputs), str(f32), input_names=INPUT_NAMES, output_names=["logits"],
                          opset_version=17, dynamo=False)
    quantize_dynamic(str(f32), str(q8), weight_type=QuantType.QInt8, per_channel=True)
    return f32, q8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilebert")
    ap.add_argument("--recipes", default="fp32,fp16,int8,int4")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fma-units", type=int, default=2)
    ap.add_argument("--baseline", action="store_true", help="also the fp32/int8 programs without graph rewrites")
    ap.add_argument("--no-python", action="store_true", help="skip the Python-runtime contestants")
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--out", default="peers", help="results file name (benchmarks/results/NAME.md)")
    a = ap.parse_args()
    from common.console import silence_libraries

    silence_libraries()
    from harness.export.exporter import ExportRequest, example_inputs, export
    from harness.export.recipes import RecipeOptions

    cpu = cpu_facts(a.fma_units)
    flop = model_flop(a.model, a.seq_len)
    inputs = example_inputs(a.seq_len, flop["vocab"])
    from benchmarks.peak import measured_peak

    peak = measured_peak(a.threads)  # the cores' own FMA rate now: no clock or vector width assumed
    peak_gflops = peak["fp32_gflops"][a.threads - 1]
    floor_ms = flop["total"] / (peak_gflops * 1e9) * 1e3
    assumed_ms = (flop["total"] / (a.threads * cpu["mhz"] * 1e6 * cpu["flop_per_cycle"]) * 1e3
                  if cpu["mhz"] else None)

    contestants, sizes, numerics = {}, {}, {}
    variants = [(r, True) for r in a.recipes.split(",")]
    if a.baseline:
        variants += [(r, False) for r in ("fp32", "int8") if r in a.recipes.split(",")]
    for recipe, rewrites in variants:
        label = f"ExecuTorch {recipe}" + ("" if rewrites else " (no rewrites)")
        print(f"exporting {label} ...", flush=True)
        res = export(ExportRequest(model=a.model, recipe=recipe, seq_len=a.seq_len, numerics_samples=16,
                                   options=RecipeOptions(graph_rewrites=rewrites)), a.results)
        sizes[label] = res.program.stat().st_size
        numerics[label] = (res.manifest.numerics or {}, res.manifest.delegation)
        contestants[f"{label}, native"] = Harness(res.program, "native", a.threads, a.results)
        if not a.no_python and rewrites:
            contestants[f"{label}, Python runtime"] = Harness(res.program, "python", a.threads, a.results)
    work = tempfile.TemporaryDirectory(prefix="peers-")  # removed when main returns
    import onnxruntime

    f32, q8 = onnx_models(flop["wrapper"], inputs, Path(work.name))
    sizes["ONNX Runtime fp32"], sizes["ONNX Runtime int8"] = f32.stat().st_size, q8.stat().st_size
    contestants[f"ONNX Runtime {onnxruntime.__version__} fp32"] = Ort(f32, inputs, a.threads)
    contestants[f"ONNX Runtime {onnxruntime.__version__} quantize_dynamic int8"] = Ort(q8, inputs, a.threads)
    contestants[f"torch {__import__('torch').__version__} eager fp32"] = Eager(flop["wrapper"], inputs, a.threads)

    names = list(contestants)
    per_round = interleaved_rounds(contestants, a.rounds, a.warmup, a.iterations)

    def ratio(x: str, y: str) -> float | None:
        return round_ratio(per_round, x, y)

    ref = names[0]
    rows = []
    for n in names:
        med = statistics.median(per_round[n])
        rows.append([n, f"{med:.1f}", f"{min(per_round[n]):.1f}", f"{max(per_round[n]):.1f}",
                     f"{ratio(n, ref):.3f}", f"{med / floor_ms:.2f}"])
    ort32 = f"ONNX Runtime {onnxruntime.__version__} fp32"
    ort8 = f"ONNX Runtime {onnxruntime.__version__} quantize_dynamic int8"
    goals = []

    def goal(text, value, limit):
        if value is not None:
            goals.append(f"{text} = {value:.3f} (goal <= {limit}: {'met' if value <= limit else 'NOT met'})")

    fp32n = "ExecuTorch fp32, native"
    goal("fp32 / floor", statistics.median(per_round[fp32n]) / floor_ms if fp32n in per_round else None, 1.3)
    goal("fp32 / ONNX Runtime fp32", ratio(fp32n, ort32), 0.8)
    goal("int8 / ONNX Runtime int8", ratio("ExecuTorch int8, native", ort8), 0.5)
    goal("int8 / our fp32", ratio("ExecuTorch int8, native", fp32n), 0.4)
    goal("int4 / our fp32", ratio("ExecuTorch int4, native", fp32n), 0.5)
    if "ExecuTorch int4" in sizes and "ExecuTorch fp32" in sizes:
        goal("int4 size / fp32 size", sizes["ExecuTorch int4"] / sizes["ExecuTorch fp32"], 0.3)
    for r in ("fp32", "int8"):
        v = ratio(f"ExecuTorch {r}, native", f"ExecuTorch {r} (no rewrites), native")
        if v is not None:
            goals.append(f"{r} with rewrites / without, same rounds = {v:.3f}")
    notes = [
        f"CPU: {cpu['model']}, {cpu['mhz']:.0f} MHz, {os.cpu_count()} logical CPUs, vector width {cpu['lanes']} fp32 "
        f"lanes, AVX-512 {'yes' if cpu['avx512'] else 'no'}, AVX512-FP16 {'yes' if cpu['avx512_fp16'] else 'no'}, "
        f"AMX {'yes' if cpu['amx'] else 'no'}, VNNI {'yes' if cpu['vnni'] else 'no'} (from /proc/cpuinfo)",
        f"floor: {flop['total'] / 1e9:.3f} GFLOP per inference (FlopCounterMode on the model's own shapes: "
        + ", ".join(f"{k} {v / 1e9:.3f}" for k, v in flop["by_op"].items())
        + f") / the measured peak of {a.threads} threads, {peak_gflops:.1f} GFLOP/s (benchmarks/peak.py: independent "
        f"FMA chains, best of 5) = {floor_ms:.1f} ms"
        + (f"; from /proc/cpuinfo's clock it would be {assumed_ms:.1f} ms ({a.threads} x {cpu['mhz'] / 1e3:.2f} GHz "
           f"x {cpu['flop_per_cycle']} FLOP/cycle)" if assumed_ms else "; /proc/cpuinfo gives no clock here"),
        *goals,
        f"{a.model} seq {a.seq_len}, batch 1, untrained random weights; {a.threads} threads; {a.rounds} rounds x "
        f"{a.iterations} timed iterations after {a.warmup} warmup, per contestant per round; order rotated each round",
        "ratio column: the median over rounds of (this / first row) within each round; x floor: median / floor",
        "program / model sizes MB: " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in sizes.items()),
        "numerics of our programs vs fp32 eager (manifest, real rotten_tomatoes dev text): " + "; ".join(
            f"{k}: agreement {n.get('top1_agreement', '?')}, max rel logit error {n.get('max_rel_logit_error', '?')}, "
            f"{d.get('ops_delegated')} ops in XNNPACK, {d.get('ops_outside')} outside"
            for k, (n, d) in numerics.items()),
        "ONNX Runtime and torch eager run inside the benchmark process (intra-op threads = 2, ORT_ENABLE_ALL, idle spinning off so that it does not take the cores from the next contestant); our "
        "programs run as `harness run` processes (the native runner's and the Python runtime's own timing loops)",
    ]
    write_table(a.out, "MobileBERT beside its peers, one interleaved run",
                "python benchmarks/peers.py " + " ".join(sys.argv[1:]),
                ["program", "median ms", "min ms", "max ms", f"ratio to {ref}", "x floor"], rows, notes,
                ratios={**{f"{n} / {ref}": (ratio(n, ref), "lower") for n in names[1:] if ratio(n, ref)},
                        **{f"{n} x floor": (statistics.median(per_round[n]) / floor_ms, "lower") for n in names}})


if __name__ == "__main__":
    main()
