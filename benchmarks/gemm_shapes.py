"""Issue #17: how close XNNPACK's GEMMs come to this CPU's peak at MobileBERT's own linear shapes.

    .venv/bin/python benchmarks/gemm_shapes.py [--tokens 128,512] [--threads 1,2] [--rounds 5]

The profile (docs/performance.md) puts ~90% of a full-size MobileBERT inference in XNNPACK's fully-connected
GEMMs, so the fp32 program's distance from the floor is the GEMMs' efficiency. This measures it directly: for each
distinct (K, N) of the linears in the exported model (after harness.export.rewrites), weighted by its share of the
model's MACs, one fp32 XNNPACK program that is a chain of 16 such linears (K->N then N->K, so each call does enough
work for the call itself not to count), run by ExecuTorch's runtime at M = tokens rows, threads 1 and 2, rounds
interleaved. GFLOP/s against the peak (threads x clock x fp32 FLOP per cycle, read from /proc/cpuinfo as
benchmarks/peers.py does) says how much is the kernel at this shape (1 thread) and how much is the hand-off between
threads (2 threads); M = 512 says what batching four sequences per call would buy.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import time_ms, write_table  # noqa: E402
from benchmarks.peers import cpu_facts  # noqa: E402

CHAIN = 16


def model_shapes(model_name: str) -> collections.Counter:
    """(in, out) features of every linear the exported model runs, rewrites applied, with their counts."""
    import torch

    from harness.export.exporter import ExportRequest, build_model
    from harness.export.rewrites import rewrite

    model, _, _, _ = build_model(ExportRequest(model=model_name, seq_len=128))
    model = rewrite(model.eval(), carry_scales=True)
    return collections.Counter((m.in_features, m.out_features) for m in model.modules()
                               if isinstance(m, torch.nn.Linear))


def chain_program(k: int, n: int, tokens: int, work: Path) -> Path:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    class Chain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(*((k, n) if i % 2 == 0 else (n, k)))
                                              for i in range(CHAIN))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    x = torch.randn(tokens, k)
    ep = torch.export.export(Chain().eval(), (x,))
    prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    path = work / f"chain_{k}x{n}_m{tokens}.pte"
    path.write_bytes(prog.buffer)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilebert")
    ap.add_argument("--tokens", default="128,512", help="M: rows per GEMM (128 = one sequence of 128 tokens)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--fma-units", type=int, default=2)
    ap.add_argument("--out", default="gemm_shapes")
    a = ap.parse_args()
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    torch.set_num_threads(1)
    cpu = cpu_facts(a.fma_units)
    from benchmarks.peak import measured_peak

    peak_per_thread = measured_peak(1)["fp32_gflops"][0]  # GFLOP/s of one core now (benchmarks/peak.py)
    shapes = model_shapes(a.model)
    macs = {s: c * s[0] * s[1] for s, c in shapes.items()}
    tokens = [int(t) for t in a.tokens.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    runtime = Runtime.get()
    times = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        programs = {(k, n, m): chain_program(k, n, m, Path(tmp)).read_bytes() for (k, n) in shapes for m in tokens}
        for r in range(a.rounds):
            for t in threads:
                # XNNPACK takes the threadpool when a method is loaded: resize it first, then load
                portable_lib._unsafe_reset_threadpool(t)
                for (k, n, m), data in programs.items():
                    program = runtime.load_program(data)
                    method, x = program.load_method("forward"), torch.randn(m, k)
                    times[k, n, m, t].append(statistics.median(
                        time_ms(lambda method=method, x=x: method.execute([x]), 3, a.iterations)))
                    del method, program
            print(f"round {r + 1}/{a.rounds} done", flush=True)
    rows, weighted = [], collections.defaultdict(float)
    total_macs = sum(macs.values())
    for (k, n), count in sorted(shapes.items(), key=lambda kv: -macs[kv[0]]):
        for m in tokens:
            row = [f"{k}x{n}", count, f"{macs[k, n] / total_macs:.1%}", m]
            for t in threads:
                ms = statistics.median(times[k, n, m, t])
                gflops = 2 * m * k * n * CHAIN / ms / 1e6
                row += [f"{gflops:.1f}", f"{gflops / (peak_per_thread * t):.0%}"]
                weighted[m, t] += macs[k, n] / total_macs / gflops  # harmonic mean, by MAC share
            rows.append(row)
    header = ["K x N", "linears", "MAC share", "M"]
    for t in threads:
        header += [f"GFLOP/s, {t} thr", f"of peak, {t} thr"]
    notes = [f"CPU: {cpu['model']}, {cpu['lanes']} fp32 lanes; peak {peak_per_thread:.1f} GFLOP/s per thread, "
             "measured (benchmarks/peak.py: independent FMA chains, best of 5), not assumed from a clock",
             f"{a.model}'s linears after harness.export.rewrites: {sum(shapes.values())} per inference; each row "
             f"times one fp32 XNNPACK program of {CHAIN} chained linears (K->N, N->K), median over {a.rounds} "
             f"interleaved rounds of the median of {a.iterations} calls"]
    for (m, t), inv in sorted(weighted.items()):
        notes.append(f"M = {m}, {t} thread(s): the model's MAC-weighted GEMM rate {1 / inv:.1f} GFLOP/s = "
                     f"{1 / inv / (peak_per_thread * t):.0%} of peak")
    write_table(a.out, "XNNPACK fp32 GEMMs at MobileBERT's shapes against the CPU's peak",
                "python benchmarks/gemm_shapes.py " + " ".join(sys.argv[1:]), header, rows, notes)


if __name__ == "__main__":
    main()
