"""The one training loop every recipe runs: seeded, resumable after a kill, logged term by term."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from model.distill import dist
from model.distill.optim import make_optimizer, param_groups, set_lr

STATE_FILE = "training_state.pt"
LOG_FILE = "train_log.jsonl"


_SEQ_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mlm_labels")


def trim(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cut the padding every row of the batch shares: short snippets then cost what they are."""
    width = int(batch["attention_mask"].sum(1).max())
    return {k: (v[:, :width] if v.ndim == 2 and k in _SEQ_KEYS else v)
            for k, v in batch.items()}


@dataclass
class LoopConfig:
    """Knobs of one training run; saved with the state so a resume can refuse a changed command."""

    steps: int
    batch_size: int = 32
    lr: float = 1e-4
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    seed: int = 0
    save_every: int = 200
    log_every: int = 20
    lr_scale: dict[str, float] = field(default_factory=dict)  # name prefix -> lr multiplier (e.g. lower layers)
    precision: str = "fp32"  # or "bf16": autocast of the forward passes (GPUs; CPUs with bf16 support)

    def __post_init__(self):
        for name in ("steps", "batch_size", "grad_accum", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if self.lr <= 0:
            raise ValueError(f"--lr must be positive (got {self.lr})")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"--precision {self.precision!r}: choose fp32 or bf16")


def pick_device(name: str | None = None) -> torch.device:
    """This rank's GPU when present, else the CPU; an explicit name wins."""
    if name:
        return torch.device(name)
    return dist.world().device


def batch_indices(n: int, batch_size: int, seed: int, draw: int) -> np.ndarray:
    """Indices of the `draw`-th batch: epochs are seeded permutations, so draw k is the same after a resume."""
    if n < 1:
        raise ValueError("the training set is empty")
    start = draw * batch_size
    out = []
    while len(out) < batch_size:
        epoch, pos = divmod(start + len(out), n)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        out.extend(perm[pos:pos + batch_size - len(out)].tolist())
    return np.asarray(out)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temp file then rename, so a kill never leaves a half-written file under `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def read_state(out_dir: Path) -> dict | None:
    """The saved training state of `out_dir`, or None when it has none."""
    path = out_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"{path}: unreadable training state ({type(exc).__name__}); delete it to restart") from None


def read_state_shared(out_dir: Path) -> dict | None:
    """read_state on rank 0, handed to every rank: other nodes need not see rank 0's disk, and all fail alike."""
    found = None
    if dist.world().main:
        try:
            found = ("ok", read_state(out_dir))
        except ValueError as exc:
            found = ("error", str(exc))
    kind, value = dist.broadcast(found)
    if kind == "error":
        raise ValueError(value)
    return value


def check_not_partial(directory: Path) -> None:
    """Refuse to use, as a finished model, a directory whose training was interrupted."""
    state = read_state(Path(directory))
    if state is not None and not state.get("done"):
        raise ValueError(f"{directory} is from an interrupted run (step {state['step']}/{state['total']}): "
                              "rerun the same command to resume it")


def train_loop(model: torch.nn.Module, loss_fn: Callable, sample: Callable[[int], dict], cfg: LoopConfig,
               out_dir: Path, save_model: Callable[[torch.nn.Module, Path], None], desc: str = "train",
               device: torch.device | None = None, args: dict | None = None, step_offset: int = 0, final_stage: bool = True) -> dict:
    """Run `cfg.steps` optimizer steps of `loss_fn(model, batch) -> (loss, {term: float})` on `sample(draw)`.

    Resumes from `out_dir/training_state.pt` when present (same `args` required); saves the model in Hugging Face
    format with `save_model` every `cfg.save_every` steps and at the end. Returns the last logged terms.

    Under torchrun, every rank runs this with the same arguments: each trains on its rows of the global batch
    `sample(draw)` through DistributedDataParallel, and rank 0 alone writes (see model/distill/dist.py).
    """
    w = dist.world()
    device = device or pick_device()
    out_dir = Path(out_dir)
    dist.check_batch(cfg.batch_size, w.size)
    if w.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    opt = make_optimizer(cfg.optimizer, param_groups(model.named_parameters(), cfg.weight_decay, cfg.lr_scale), cfg.lr)
    run_args = {"loop": asdict(cfg), **(args or {})}
    step = 0
    state = read_state_shared(out_dir)
    if state is not None and state.get("desc") == desc:
        if state["args"] != run_args:
            changed = sorted(k for k in set(state["args"]) | set(run_args) if state["args"].get(k) != run_args.get(k))
            raise ValueError(f"{out_dir} holds a run started with different settings ({', '.join(changed)}): "
                           "use another --out or repeat the original command to resume")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
        if step >= cfg.steps:
            return state.get("last", {})
        if w.main:
            print(f"[{desc}] resuming {out_dir} at step {step}/{cfg.steps}", file=sys.stderr)
    elif state is not None:
        model.load_state_dict(state["model"])  # an earlier stage of the same run finished: start from its weights

    net = dist.wrap(model, w)  # after the resume: DDP starts every rank from rank 0's weights

    def save(done: bool, last: dict) -> None:
        if not w.main:
            return
        # Weights first, then the state that says how far they got: a kill in between replays a few steps at most.
        save_model(model, out_dir)
        blob = {"desc": desc, "args": run_args, "step": step, "total": cfg.steps, "done": done and final_stage,
                "stage_done": done, "last": last,
                "model": model.state_dict(), "optimizer": opt.state_dict()}
        write_atomic(out_dir / STATE_FILE, lambda p: torch.save(blob, p))

    warmup = int(cfg.warmup_frac * cfg.steps)
    last: dict = {}
    seen, t0 = 0, time.perf_counter()
    log = open(out_dir / LOG_FILE, "a") if w.main else None
    bar = _Bar(desc, cfg.steps, step, quiet=not w.main)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    try:
        model.train()
        while step < cfg.steps:
            lr = set_lr(opt, cfg.lr, step, cfg.steps, warmup)
            torch.manual_seed(cfg.seed * 1_000_003 + step_offset + step)  # dropout: same masks after a resume
            opt.zero_grad(set_to_none=True)
            terms_sum: dict[str, float] = {}
            for micro in range(cfg.grad_accum):
                batch = dist.shard(sample(step * cfg.grad_accum + micro), w)
                batch = {k: v.to(device) for k, v in batch.items()}
                last_micro = micro == cfg.grad_accum - 1
                with (contextlib.nullcontext() if last_micro or net is model else net.no_sync()):
                    with autocast:
                        loss, terms = loss_fn(net, batch)
                    # DDP averages gradients over ranks; each loss is a shard sum over a global count, so scale back
                    (loss * w.size / cfg.grad_accum).backward()
                for k, v in terms.items():
                    terms_sum[k] = terms_sum.get(k, 0.0) + float(v) / cfg.grad_accum
                seen += int(batch["n_rows"])
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            step += 1
            terms_sum = dist.sum_terms(terms_sum)
            rate = seen / max(time.perf_counter() - t0, 1e-9)
            last = {"step": step, "lr": lr, "samples_per_s": rate, **terms_sum}
            bar.update(step, terms_sum.get("loss", loss.item()), rate)
            if log is not None and (step % cfg.log_every == 0 or step == cfg.steps):
                log.write(json.dumps({"desc": desc, **last}) + "\n")
                log.flush()
            if step % cfg.save_every == 0 and step < cfg.steps:
                save(False, last)
        save(True, last)
        dist.barrier()  # every rank returns once the checkpoint is on disk
    finally:
        bar.close()
        if log is not None:
            log.close()
    return last


class _Bar:
    """A rich progress bar on a terminal, a log line every few seconds otherwise (nohup logs stay readable)."""

    def __init__(self, desc: str, total: int, done: int, quiet: bool = False):
        self.desc, self.total, self.t_print, self.quiet = desc, total, 0.0, quiet
        self.progress = None
        if sys.stderr.isatty() and not quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:.1f} samples/s"),
                                     TimeRemainingColumn(), transient=False)
            self.progress.start()
            self.task = self.progress.add_task(desc, total=total, completed=done, loss=float("nan"), rate=0.0)

    def update(self, step: int, loss: float, rate: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=loss, rate=rate)
        elif not self.quiet and (time.monotonic() - self.t_print > 10 or step == self.total):
            self.t_print = time.monotonic()
            print(f"[{self.desc}] step {step}/{self.total} loss {loss:.4f} {rate:.1f} samples/s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
