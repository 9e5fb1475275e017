"""Issue #3 table: every recipe on the full MobileBERT (seq 128, batch 1): export seconds and peak RSS, program size,
XNNPACK pieces and ops left outside, latency (executorch.runtime, 2 threads), agreement with fp32 eager on real dev
text; plus ONNX Runtime's quantize_dynamic int8 of the same model as the outside reference.

    .venv/bin/python benchmarks/quant_table.py [--model mobilebert] [--recipes fp32,int8,...] [--samples 200]

Each export runs in its own process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import median, time_ms, write_table  # noqa: E402

# (label, recipe, extra options)
VARIANTS = {
    "fp32": ("fp32", {}),
    "fp16": ("fp16", {}),
    "int8": ("int8", {}),
    "int8+emb8w": ("int8", {"quant_embedding": "8w"}),
    "int8-static": ("int8-static", {}),
    "int4": ("int4", {}),
    "int4+emb4w": ("int4", {"quant_embedding": "4w"}),
}


def export_one(a, label: str) -> dict:
    """Child process: export one variant, print its manifest as JSON."""
    import torch

    torch.set_num_threads(2)
    from common.console import silence_libraries

    silence_libraries()
    from harness.export.exporter import ExportRequest, export
    from harness.export.recipes import RecipeOptions

    recipe, extra = VARIANTS[label]
    req = ExportRequest(model=a.model, recipe=recipe, seq_len=a.seq_len, options=RecipeOptions(**extra),
                        numerics_task="rotten_tomatoes", numerics_samples=a.samples, calibration_samples=a.calibration,
                        min_agreement=0.99, name=f"{a.model}-{label}-s{a.seq_len}")
    res = export(req, a.results)
    return {"program": str(res.program), "cached": res.cached, **res.manifest.to_dict()}


def program_runner(program: str, inputs):
    """One inference of the program through executorch.runtime (2-thread XNNPACK threadpool)."""
    import executorch.kernels.quantized  # noqa: F401
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    from program.pte import load_forward

    _unsafe_reset_threadpool(2)
    method = load_forward(program)
    return lambda: method.execute(list(inputs))


def interleaved_ms(runners: dict, rounds: int, iterations: int) -> dict[str, tuple[float, float, float]]:
    """label -> (median, lowest, highest) of per-round medians. Every round times every runner in turn, so a shift of
    the shared machine's speed lands on all of them alike instead of on whichever was timed at that moment."""
    per_round: dict[str, list[float]] = {k: [] for k in runners}
    for fn in runners.values():
        time_ms(fn, warmup=5, iterations=1)
    for _ in range(rounds):
        for label, fn in runners.items():
            per_round[label].append(median(time_ms(fn, warmup=1, iterations=iterations)))
    return {k: (median(v), min(v), max(v)) for k, v in per_round.items()}


def ort_int8_runner(a, inputs):
    """ONNX Runtime quantize_dynamic (int8 weights, dynamic activations) of the same fp32 model: (run, MB)."""
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from harness.export.exporter import ExportRequest, ProgramModule, build_model

    model, head, _, _ = build_model(ExportRequest(model=a.model, seq_len=a.seq_len))
    wrapper = ProgramModule(model, head).eval()
    with tempfile.TemporaryDirectory() as d:
        f32, q8 = Path(d) / "m.onnx", Path(d) / "m.int8.onnx"
        torch.onnx.export(wrapper, tuple(inputs), str(f32), input_names=["input_ids", "attention_mask", "token_type_ids"],
                          opset_version=17, dynamo=False)
        quantize_dynamic(str(f32), str(q8), weight_type=QuantType.QInt8)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 2, 1
        sess = ort.InferenceSession(str(q8), so, providers=["CPUExecutionProvider"])
        feed = {n: t.numpy() for n, t in zip(["input_ids", "attention_mask", "token_type_ids"], inputs)}
        return (lambda: sess.run(None, feed)), q8.stat().st_size / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilebert")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--recipes", default=",".join(VARIANTS))
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--calibration", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=10, help="timed iterations per runner per round")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (the latency is their median)")
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--jobs", type=int, default=1, help="exports run side by side (export seconds then overlap)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print("MANIFEST " + json.dumps(export_one(a, a.one)))
        return

    import torch

    torch.set_num_threads(1)  # executorch's own threadpool does the work; keep torch's threads out of the way
    from common.console import silence_libraries

    silence_libraries()
    from harness.export.exporter import example_inputs

    rows, got, inputs = [], {}, None
    labels = a.recipes.split(",")
    procs = {}
    for i, label in enumerate(labels):
        cmd = [sys.executable, __file__, "--one", label, "--model", a.model, "--seq-len", str(a.seq_len),
               "--samples", str(a.samples), "--calibration", str(a.calibration), "--results", str(a.results)]
        procs[label] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        if (i + 1) % a.jobs == 0 or i + 1 == len(labels):
            for p in procs.values():
                if not hasattr(p, "out"):
                    p.out, p.err = p.communicate()
    manifests, runners, notes = {}, {}, []
    for label in labels:
        p = procs[label]
        line = next((ln for ln in p.out.splitlines() if ln.startswith("MANIFEST ")), None)
        if p.returncode or line is None:
            err = (p.err.strip().splitlines() or ["?"])[-1]
            rows.append([label, "failed: " + err[:120]] + [""] * 9)
            print(label, "failed:", err, file=sys.stderr)
            continue
        manifests[label] = m = json.loads(line.removeprefix("MANIFEST "))
        inputs = example_inputs(a.seq_len, m["vocab_size"])
        runners[label] = program_runner(m["program"], inputs)
    ort_mb = None
    try:
        if inputs is None:
            raise RuntimeError("no program was exported")
        runners["ort"], ort_mb = ort_int8_runner(a, inputs)
    except Exception as e:  # the outside reference is optional; say why it is missing
        notes.append(f"ONNX Runtime reference not measured: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    lat = interleaved_ms(runners, a.rounds, a.iterations)
    for label, m in manifests.items():
        d, n = m["delegation"], m.get("numerics") or {}
        outside = ", ".join(f"{k.removeprefix('aten_')} x{v}" for k, v in d["outside_by_op"].items()
                            if k != "getitem")
        ms, lo, hi = lat[label]
        got[label] = (ms, m["program_bytes"] / 1e6)
        rows.append([label, m["export_seconds"] if not m["cached"] else f"{m['export_seconds']} (cached)",
                     m["export_peak_rss_mb"], m["program_bytes"] / 1e6, d["pieces"], d["ops_outside"], outside,
                     f"{ms:.2f} ({lo:.2f}-{hi:.2f})", n.get("top1_agreement", ""), n.get("max_rel_logit_error", ""),
                     m["status"]])
    if "ort" in lat:
        ms, lo, hi = lat["ort"]
        rows.append(["onnxruntime quantize_dynamic int8", "", "", ort_mb, "", "", "", f"{ms:.2f} ({lo:.2f}-{hi:.2f})",
                     "", "", ""])
        if "int8" in got:
            notes.append(f"int8 latency / ORT int8 latency = {got['int8'][0] / ms:.2f} (goal <= 0.6)")
    if "fp32" in got:
        f_ms, f_mb = got["fp32"]
        for label, (ms, mb) in got.items():
            notes.append(f"{label}: latency {ms / f_ms:.2f}x fp32, size {mb / f_mb:.2f}x fp32")
    if a.jobs > 1:
        notes.append(f"exports ran {a.jobs} at a time on 2 shared cores: export seconds are inflated by the overlap")
    notes += ["latency: executorch.runtime in-process, XNNPACK threadpool 2 threads (ORT: 2 intra-op threads), batch 1, "
              f"seq {a.seq_len}; {a.rounds} interleaved rounds of {a.iterations} iterations per runner: the median of "
              "the round medians (lowest-highest round in brackets); export RSS is the export process's peak",
              f"agreement: top-1 vs fp32 eager on {a.samples} rotten_tomatoes dev examples; weights are the preset's "
              "random init (no trained MobileBERT offline), so agreement on near-tied logits is a stress test, "
              "not task accuracy"]
    write_table("quant_table", f"Quantization recipes, {a.model}, seq {a.seq_len}",
                "python benchmarks/quant_table.py " + " ".join(sys.argv[1:]),
                ["variant", "export s", "export peak RSS MB", "program MB", "pieces", "ops outside",
                 "outside by op", "latency ms", "top-1 agreement", "max rel logit err", "status"], rows, notes)


if __name__ == "__main__":
    main()
