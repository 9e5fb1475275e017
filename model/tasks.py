"""Task fine-tuning: a classification head on any supported model, from labels and optionally a teacher's logits."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from data import TaskData, encode, load_task
from model.distill import dist, models
from model.distill.loop import LoopConfig, batch_indices, pick_device, train_loop, trim, write_atomic



@torch.no_grad()
def predict_logits(model, enc: dict[str, np.ndarray], batch_size: int = 64, device=None) -> np.ndarray:
    """Logits [N, num_labels] of `model` on encoded inputs, in eval mode."""
    device = device or pick_device()
    model.to(device).eval()
    # Batches of similar length, so trimming the shared padding cuts most of it; rows go back in input order.
    order = np.argsort(enc["attention_mask"].sum(1), kind="stable")
    out = []
    for i in range(0, len(order), batch_size):
        rows = order[i:i + batch_size]
        batch = trim({k: torch.from_numpy(v[rows]).to(device) for k, v in enc.items()})
        out.append(models.outputs(model, batch).logits.float().cpu().numpy())
    if not out:
        return np.zeros((0, 0), np.float32)
    logits = np.empty((len(order), out[0].shape[1]), np.float32)
    logits[order] = np.concatenate(out)
    return logits


def evaluate(model, tok, data: TaskData, seq_len: int = 128, batch_size: int = 64) -> dict:
    """Accuracy of `model` on one task split."""
    logits = predict_logits(model, encode(tok, data.texts, seq_len), batch_size)
    acc = float((logits.argmax(-1) == data.labels).mean())
    return {"task": data.name, "n": len(data), "metric": data.metric, "accuracy": acc}


def kd_loss(student_logits, teacher_logits, temperature: float, n_rows=None) -> torch.Tensor:
    """Hinton's soft-target loss: KL(teacher || student) at temperature T, scaled by T^2 to keep gradients comparable.

    `n_rows`: the global batch's rows when this is one rank's shard (the KL sum is divided by it).
    """
    t = temperature
    kl = F.kl_div(F.log_softmax(student_logits / t, -1), F.log_softmax(teacher_logits / t, -1),
                  log_target=True, reduction="sum")
    return kl / (len(student_logits) if n_rows is None else n_rows) * t * t


@contextlib.contextmanager
def _every_core(wanted: bool):
    """Scoring is inference before training starts: one process may use every core for it, whatever --threads says."""
    before = torch.get_num_threads()
    if wanted:
        torch.set_num_threads(max(before, len(os.sched_getaffinity(0))))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def finetune(model, tok, task: str, out_dir: Path, cfg: LoopConfig, seq_len: int = 128, teacher=None,
             alpha: float = 0.5, temperature: float = 2.0, transfer_texts: list[str] | None = None,
             eval_split: str = "dev", args: dict | None = None) -> dict:
    """Train `model` on the task's train split, save it (Hugging Face format) in `out_dir`, return dev metrics.

    With a `teacher`, loss = alpha * CE(labels) + (1 - alpha) * KD(teacher logits); `transfer_texts` (no labels)
    add KD-only examples, the cheap way to give a small student more of the teacher's knowledge.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"--alpha must be in [0, 1] (got {alpha})")
    out_dir = Path(out_dir)
    main = dist.world().main  # under torchrun, rank 0 alone writes and evaluates
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    train = load_task(task, "train")
    texts, labels = list(train.texts), train.labels
    if transfer_texts:
        if teacher is None:
            raise ValueError("--transfer-corpus needs a --teacher to label it")
        texts += list(transfer_texts)
        labels = np.concatenate([labels, np.full(len(transfer_texts), -1, np.int64)])
    enc = encode(tok, texts, seq_len)
    tensors = {k: torch.from_numpy(v) for k, v in enc.items()}
    tensors["labels"] = torch.from_numpy(labels)
    if teacher is not None:
        cache = out_dir / "teacher_logits.npy"  # the teacher is frozen: score the set once, survive a resume
        if cache.is_file() and np.load(cache).shape[0] == len(texts):
            t_logits = np.load(cache)
        else:
            with _every_core(dist.world().size == 1):
                t_logits = predict_logits(teacher, enc)
            if main:
                write_atomic(cache, lambda p: np.save(open(p, "wb"), t_logits))
        tensors["teacher_logits"] = torch.from_numpy(t_logits)
        if main:
            teacher_dev = evaluate(teacher, tok, load_task(task, eval_split), seq_len)
            print(f"teacher {eval_split} accuracy {teacher_dev['accuracy']:.4f}")
    n = len(texts)

    def sample(draw: int) -> dict:
        return trim({k: v[batch_indices(n, cfg.batch_size, cfg.seed, draw)] for k, v in tensors.items()})

    def loss_fn(m, batch):
        logits = models.outputs(m, batch).logits
        has_label = batch["labels"] >= 0
        # Sums over the global counts (see model/distill/dist.py): a rank's shard adds up to the 1-process loss.
        ce = dist.mean(F.cross_entropy(logits[has_label], batch["labels"][has_label], reduction="sum"), batch,
                       "n_labelled", has_label.sum()) if has_label.any() else logits.sum() * 0
        if teacher is None:
            return ce, {"loss": ce.item(), "ce": ce.item()}
        kd = kd_loss(logits, batch["teacher_logits"], temperature, batch.get("n_rows"))
        loss = alpha * ce + (1 - alpha) * kd
        return loss, {"loss": loss.item(), "ce": ce.item(), "kd": kd.item()}

    run_args = {"task": task, "seq_len": seq_len, "alpha": alpha, "temperature": temperature,
                "n_train": n, "teacher": teacher is not None, **(args or {})}
    last = train_loop(model, loss_fn, sample, cfg, out_dir, lambda m, d: models.save(m, d, tok),
                      desc=f"finetune-{task}", args=run_args)
    if not main:
        return {}
    result = evaluate(model, tok, load_task(task, eval_split), seq_len)
    result.update(split=eval_split, train_steps=cfg.steps, last=last)
    write_atomic(out_dir / f"eval_{eval_split}.json", lambda p: p.write_text(json.dumps(result, indent=2)))
    return result
