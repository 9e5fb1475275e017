"""Training throughput (samples/s) of task fine-tuning and of a distillation step, per preset, on this machine.

    python benchmarks/train_throughput.py                      # test-tiny and mobilebert, seq 128
    python benchmarks/train_throughput.py --presets test-tiny --seq-len 64 --steps 5
"""

from __future__ import annotations

import argparse
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
    step()  # warmup: allocator, autograd graph caches
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch_size * steps / (time.perf_counter() - t0)


def finetune_rate(preset: str, batch_size: int, seq_len: int, steps: int, device) -> float:
    cfg = get_preset(preset)
    model = MobileBertForSequenceClassification(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    b = _batch(cfg, batch_size, seq_len, device)

    def step():
        loss = torch.nn.functional.cross_entropy(
            model(b["input_ids"], b["attention_mask"], b["token_type_ids"]).logits, b["labels"])
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _rate(step, batch_size, steps)


def distill_rate(preset: str, batch_size: int, seq_len: int, steps: int, device) -> float:
    """One auxiliary-strategy step: teacher forward + student forward/backward with FMT, AT and PD on all layers."""
    cfg = get_preset(preset)
    student = MobileBertForPreTraining(cfg).to(device).train()
    teacher = MobileBertForPreTraining(get_preset(TEACHER_OF[preset])).to(device).eval()
    opt = torch.optim.AdamW(student.parameters(), lr=1e-4)
    weights = TransferWeights(pd_weights=PDWeights())
    loss_fn = stage_loss(Stage("auxiliary", list(range(cfg.num_hidden_layers)), pd=True), weights)
    b = _batch(cfg, batch_size, seq_len, device)

    def step():
        with torch.no_grad():
            t_out = teacher(b["input_ids"], b["attention_mask"], b["token_type_ids"], True, True)
        loss, _ = loss_fn(student, t_out, b)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _rate(step, batch_size, steps)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="test-tiny,mobilebert")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--distill-presets", default="test-tiny",
                   help="Presets whose distillation step is timed too (mobilebert's teacher, IB-BERT-large, is 293M).")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = pick_device()
    rows = []
    for preset in a.presets.split(","):
        ft = finetune_rate(preset, a.batch_size, a.seq_len, a.steps, device)
        dist = "-" if preset not in a.distill_presets.split(",") else distill_rate(preset, a.batch_size, a.seq_len, a.steps, device)
        seq = min(a.seq_len, get_preset(preset).max_position_embeddings)
        rows.append([preset, TEACHER_OF.get(preset, "-"), seq, a.batch_size, ft, dist])
        print(rows[-1], flush=True)
    cmd = "python benchmarks/train_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_table("train_throughput", "Training throughput (samples/s)", cmd.strip(),
                ["student preset", "teacher (distill)", "seq_len", "batch", "fine-tune samples/s",
                 "distill (auxiliary) samples/s"], rows,
                [f"device {device}, torch threads {a.threads}, {a.steps} timed steps after 1 warmup step, "
                 "random tokens, AdamW.",
                 "distill = teacher forward + student forward/backward with FMT and AT on every layer plus PD.",
                 "The machine is shared with other jobs: the figures are lower bounds for an idle 2-core host."])


if __name__ == "__main__":
    main()
