"""Training throughput (samples/s) of fine-tuning and distillation steps, per preset, on 1 and N processes (DDP).

    python benchmarks/train_throughput.py                      # test-tiny and mobilebert, seq 128, 1 and 2 processes
    python benchmarks/train_throughput.py --presets test-tiny --seq-len 64 --steps 5 --nprocs 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.common import write_table  # noqa: E402
from model.config import get_preset  # noqa: E402
from model.distill.loop import pick_device  # noqa: E402
from model.distill.losses import PDWeights  # noqa: E402
from model.distill.strategies import Stage, TransferWeights, stage_loss  # noqa: E402
from model.mobilebert import MobileBertForPreTraining, MobileBertForSequenceClassification  # noqa: E402

TEACHER_OF = {"test-tiny": "test-tiny-teacher", "mobilebert": "ib-bert-large", "mobilebert-tiny": "ib-bert-large"}


def _batch(cfg, batch_size: int, seq_len: int, device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    seq_len = min(seq_len, cfg.max_position_embeddings)  # test presets stop at 64 positions
    ids = torch.randint(5, cfg.vocab_size, (batch_size, seq_len), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, 1::7] = ids[:, 1::7]
    return {k: v.to(device) for k, v in {
        "input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
        "mlm_labels": labels, "nsp_labels": torch.zeros(batch_size, dtype=torch.long),
        "labels": torch.zeros(batch_size, dtype=torch.long)}.items()}


def _rate(step, batch_size: int, steps: int) -> float:
    from model.distill import dist

    step()  # warmup: allocator, autograd graph caches, DDP buckets
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dist.barrier()
    return batch_size * steps / (time.perf_counter() - t0)


def finetune_rate(preset: str, batch_size: int, seq_len: int, steps: int, device) -> float:
    """One fine-tuning step on the global batch `batch_size`, this rank's share of it under torchrun."""
    from model.distill import dist

    w = dist.world()
    cfg = get_preset(preset)
    model = MobileBertForSequenceClassification(cfg).to(device).train()
    net = dist.wrap(model, w)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    b = dist.shard(_batch(cfg, batch_size, seq_len, device), w)

    def step():
        logits = net(b["input_ids"], b["attention_mask"], b["token_type_ids"]).logits
        loss = torch.nn.functional.cross_entropy(logits, b["labels"], reduction="sum") / b["n_rows"] * w.size
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _rate(step, batch_size, steps)


def distill_rate(preset: str, batch_size: int, seq_len: int, steps: int, device) -> float:
    """One auxiliary-strategy step: teacher forward + student forward/backward with FMT, AT and PD on all layers."""
    from model.distill import dist

    w = dist.world()
    cfg = get_preset(preset)
    student = MobileBertForPreTraining(cfg).to(device).train()
    teacher = MobileBertForPreTraining(get_preset(TEACHER_OF[preset])).to(device).eval()
    net = dist.wrap(student, w)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-4)
    weights = TransferWeights(pd_weights=PDWeights())
    loss_fn = stage_loss(Stage("auxiliary", list(range(cfg.num_hidden_layers)), pd=True), weights)
    b = dist.shard(_batch(cfg, batch_size, seq_len, device), w)

    def step():
        with torch.no_grad():
            t_out = teacher(b["input_ids"], b["attention_mask"], b["token_type_ids"], True, True)
        loss, _ = loss_fn(net, t_out, b)
        opt.zero_grad()
        (loss * w.size).backward()
        opt.step()

    return _rate(step, batch_size, steps)


def worker(a) -> None:
    """One rank (or the only process): time the steps, rank 0 prints one JSON line."""
    from model.distill import dist

    w = dist.init()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = pick_device()
    ft = finetune_rate(a.preset, a.batch_size, a.seq_len, a.steps, device)
    dl = distill_rate(a.preset, a.batch_size, a.seq_len, a.steps, device) if a.distill else None
    if w.main:
        print("RESULT " + json.dumps({"finetune": ft, "distill": dl, "device": str(device)}), flush=True)
    dist.shutdown()


def measure(preset: str, nproc: int, threads: int, a, distill: bool) -> dict:
    """samples/s of `nproc` processes (torchrun, gloo on CPU) with `threads` torch threads each."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           __file__, "--worker", "--preset", preset, "--seq-len", str(a.seq_len), "--batch-size", str(a.batch_size),
           "--steps", str(a.steps), "--threads", str(threads)] + (["--distill"] if distill else [])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TORCH_CPP_LOG_LEVEL": "ERROR"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if out.returncode or line is None:
        raise SystemExit(f"{preset} x{nproc} failed:\n{out.stderr[-2000:]}")
    return json.loads(line[7:])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="test-tiny,mobilebert")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8, help="Global batch (split over the processes).")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--nprocs", default="1,2", help="Process counts to compare (each uses cores / N threads).")
    p.add_argument("--distill-presets", default="test-tiny",
                   help="Presets whose distillation step is timed too (mobilebert's teacher, IB-BERT-large, is 293M).")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--distill", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a)
    cores = len(os.sched_getaffinity(0))
    rows, device = [], "cpu"
    for preset in a.presets.split(","):
        seq = min(a.seq_len, get_preset(preset).max_position_embeddings)
        base = None
        configs = [(int(n), max(1, cores // int(n))) for n in a.nprocs.split(",")]
        if cores > 1:
            configs.insert(1, (1, 1))  # on a busy shared host one thread can beat two: show both
        for nproc, threads in configs:
            r = measure(preset, nproc, threads, a, preset in a.distill_presets.split(","))
            device = r["device"]
            base = base or r["finetune"]
            rows.append([preset, TEACHER_OF.get(preset, "-") if r["distill"] else "-", nproc, threads, seq,
                         a.batch_size, r["finetune"], f"{r['finetune'] / base:.2f}x",
                         "-" if r["distill"] is None else r["distill"]])
            print(rows[-1], flush=True)
    cmd = "python benchmarks/train_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_table("train_throughput", "Training throughput (samples/s), 1 vs 2 processes", cmd.strip(),
                ["student preset", "teacher (distill)", "processes", "threads each", "seq_len", "global batch",
                 "fine-tune samples/s", "vs 1 process", "distill (auxiliary) samples/s"], rows,
                [f"device {device}; each configuration runs under torchrun (gloo on CPU, DDP over the student), "
                 f"{a.steps} timed steps after 1 warmup step, random tokens, AdamW; the global batch is the same "
                 "for every process count, each rank takes its share.",
                 f"N processes x {cores}/N threads use the host's {cores} cores; 1 process x 1 thread is shown too "
                 "(tiny models lose to thread synchronisation when other jobs share the cores).",
                 "distill = teacher forward + student forward/backward with FMT and AT on every layer plus PD.",
                 "The machine is shared with other jobs: the figures are lower bounds for an idle host."])


if __name__ == "__main__":
    main()
