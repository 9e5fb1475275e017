"""Issue #2 benchmark: at seq 128, batch 1, 2 threads, in one run on this machine:
our MobileBERT eager fp32 vs its ExecuTorch XNNPACK fp32 program (native runner and Python runtime), and
transformers' MobileBERT eager. Goal: program latency <= 0.75x our eager latency.

    .venv/bin/python benchmarks/eager_vs_program.py [--model mobilebert] [--seq-len 128]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks.common import median, time_ms, write_table  # noqa: E402
from common.console import silence_libraries  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilebert")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--results", type=Path, default=Path("results"))
    a = ap.parse_args()
    silence_libraries()
    torch.set_num_threads(2)
    from harness.run import measure
    from harness.export.exporter import ExportRequest, ProgramModule, build_model, example_inputs, export

    req = ExportRequest(model=a.model, seq_len=a.seq_len)  # the same key as `harness export`: cache hit
    model, head, hf, _ = build_model(req)
    ours = ProgramModule(model, head).eval()
    inputs = example_inputs(a.seq_len, hf["vocab_size"])
    rows = []
    with torch.no_grad():
        ours_ms = median(time_ms(lambda: ours(*inputs), iterations=a.iterations))
    rows.append(["ours, PyTorch eager fp32", ours_ms, 1.0])

    import transformers

    cfg = transformers.MobileBertConfig(**{k: v for k, v in hf.items() if k not in ("architectures", "model_type")})
    for impl in ("eager", "sdpa"):
        hf_model = transformers.MobileBertForSequenceClassification._from_config(cfg, attn_implementation=impl).eval()
        with torch.no_grad():
            ms = median(time_ms(lambda: hf_model(input_ids=inputs[0], attention_mask=inputs[1],
                                                 token_type_ids=inputs[2]), iterations=a.iterations))
        rows.append([f"transformers {transformers.__version__}, eager fp32 (attn {impl})", ms, ms / ours_ms])

    res = export(req, a.results)
    for runner in ("native", "python"):
        rec = measure.run(measure.RunRequest.of(program=res.program, device="host", runner=runner, threads=2,
                                         warmup=10, iterations=a.iterations * 2), a.results)
        if rec.status == "failed":
            rows.append([f"ExecuTorch XNNPACK fp32 ({runner} runner)", "failed: " + str(rec.error), ""])
            continue
        ms = rec.latency.median
        rows.append([f"ExecuTorch XNNPACK fp32 ({runner} runner, run {rec.run_id})", ms, ms / ours_ms])
    goal = [r for r in rows if "native runner" in r[0]]
    notes = [f"model {a.model} (untrained random weights; latency does not depend on them), seq_len {a.seq_len}, "
             "batch 1, 2 threads; medians", "ratio = latency / ours eager"]
    if goal and isinstance(goal[0][2], float):
        notes.append(f"goal program <= 0.75x ours eager: {'met' if goal[0][2] <= 0.75 else 'NOT met'} "
                     f"({goal[0][2]:.2f}x)")
    write_table("eager_vs_program", "Eager PyTorch vs ExecuTorch program", "python benchmarks/eager_vs_program.py",
                ["what", "median ms", "ratio"], rows, notes,
                ratios={f"{r[0].split(', run ')[0]} / ours eager": (r[2], "lower") for r in rows
                        if isinstance(r[2], float) and "ExecuTorch" in r[0]})


if __name__ == "__main__":
    main()
