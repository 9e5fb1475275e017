"""torch.distributed for the trainer: one process per GPU (NCCL) or per core group (gloo), set up from torchrun's env.

A run with N processes is the 1-process run cut by rows: every rank draws the same global batch from the same
seeded stream and keeps its slice; losses divide by the global batch's counts (tokens, masked positions, rows), so
DDP's gradient average is the 1-process gradient; dropout draws its mask for the global batch and keeps the slice.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import timedelta

import torch
from torch import nn


# Counts of the global batch that every loss divides by (0-d tensors, added to each shard).
COUNT_KEYS = ("n_rows", "n_tokens", "n_masked", "n_labelled")
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank of size, and the device it trains on."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes logs and checkpoints and prints."""
        return self.rank == 0


_WORLD: World | None = None


def env_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def usable_slots(cuda: bool | None = None) -> tuple[int, str]:
    """How many processes this host can give one device each: GPUs with NCCL, else CPU cores with gloo."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda:
        return torch.cuda.device_count(), "GPUs"
    return len(os.sched_getaffinity(0)), "CPU cores"


def _die_with_parent() -> None:
    """torchrun starts each worker in its own session: make it end when its agent does, even on SIGKILL."""
    from common.lifetime import die_with_parent

    if not die_with_parent(signal.SIGKILL, "HARNESS_AGENT_PID"):  # the agent died before prctl took effect
        os._exit(1)


def init(timeout_s: float | None = None) -> World:
    """Join the process group torchrun describes in the environment (nothing to do with one process)."""
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    size = env_size()
    if size <= 1:
        _WORLD = World(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        return _WORLD
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", size))
    if os.environ.get("TORCHELASTIC_RUN_ID"):
        _die_with_parent()
    cuda = torch.cuda.is_available()
    slots, what = usable_slots(cuda)
    if local_size > slots:
        raise ValueError(f"{local_size} processes on this node but only {slots} {what}: "
                          f"use --nproc-per-node {slots} or fewer")
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, slots // local_size))  # gloo: share the cores (--threads overrides)
    timeout_s = timeout_s or float(os.environ.get("HARNESS_RENDEZVOUS_TIMEOUT", DEFAULT_TIMEOUT_S))
    addr, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "29500"))
    where = f"{addr}:{port}"
    serves = rank == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True"
    if not serves and not _reachable(addr, port, timeout_s):  # c10d would log pages of retries, then fail
        raise ConnectionError(f"rank {rank} of {size} could not reach the rendezvous at {where} within {timeout_s:g} s "
                          "(is rank 0 / torchrun running there, and the port open?)")
    try:
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=size,
                                timeout=timedelta(seconds=timeout_s), device_id=device if cuda else None)
        dist.barrier()  # every rank is there, or we fail here rather than inside the first backward
    except Exception as exc:  # DistStoreError, DistNetworkError, RuntimeError: all mean "no rendezvous"
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ConnectionError(f"rank {rank} of {size} could not reach the rendezvous at {where} within "
                          f"{timeout_s:g} s ({first})") from None
    _WORLD = World(rank, size, local_rank, device)
    return _WORLD


def _reachable(addr: str, port: int, timeout_s: float) -> bool:
    """Whether a TCP connection to the rendezvous store opens within `timeout_s` (retrying: rank 0 may be late)."""
    import socket
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((addr, port), timeout=max(0.1, min(2.0, deadline - time.monotonic()))).close()
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def world() -> World:
    """The current World (initialised on first use)."""
    return _WORLD if _WORLD is not None else init()


def shutdown() -> None:
    """Leave the process group (a no-op for one process)."""
    global _WORLD
    if _WORLD is not None and _WORLD.size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    _WORLD = None


def counts(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The global batch's denominators: rows, real tokens, masked-LM targets, labelled rows."""
    out = {"n_rows": torch.tensor(len(batch["input_ids"]))}
    if "attention_mask" in batch:
        out["n_tokens"] = batch["attention_mask"].sum()
    if "mlm_labels" in batch:
        out["n_masked"] = (batch["mlm_labels"] != -100).sum()
    if "labels" in batch:
        out["n_labelled"] = (batch["labels"] >= 0).sum()
    return out


def check_batch(batch_size: int, size: int) -> None:
    if batch_size % size:
        raise ValueError(f"--batch-size {batch_size} does not split over {size} processes: "
                       f"use a multiple of {size}")


def shard(batch: dict[str, torch.Tensor], w: World) -> dict[str, torch.Tensor]:
    """This rank's rows of the global batch, with the global counts the losses divide by."""
    n = len(batch["input_ids"])
    check_batch(n, w.size)
    per = n // w.size
    rows = {k: v[w.rank * per:(w.rank + 1) * per] for k, v in batch.items()}
    return {**rows, **counts(batch)}


def mean(total: torch.Tensor, batch: dict, key: str, local: int | torch.Tensor) -> torch.Tensor:
    """`total` (a sum over this shard) divided by the global count `key`, or by `local` outside a sharded batch."""
    n = batch.get(key, local)
    return total / torch.as_tensor(n, dtype=total.dtype, device=total.device).clamp(min=1)


def broadcast(obj):
    """Rank 0's `obj` on every rank (pickled; use for states and errors, not for per-step tensors)."""
    w = world()
    if w.size == 1:
        return obj
    import torch.distributed as dist

    box = [obj if w.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_terms(terms: dict[str, float]) -> dict[str, float]:
    """Add every rank's partial loss terms: each is a shard sum over a global count, so the sum is the term."""
    w = world()
    if w.size == 1 or not terms:
        return terms
    import torch.distributed as dist

    keys = sorted(terms)
    t = torch.tensor([terms[k] for k in keys], dtype=torch.float64,
                     device=w.device if w.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    summed = dict(zip(keys, t.tolist()))
    return {k: summed[k] for k in terms}


def lost_peer(exc: BaseException) -> bool:
    """Whether `exc` is a collective failing because another rank is gone (killed, crashed, unreachable)."""
    import torch.distributed as dist

    text = str(exc)
    return isinstance(exc, dist.DistError) or any(s in text for s in ("Connection closed", "Connection reset",
                                                                       "NCCL error", "Socket Timeout"))


def barrier() -> None:
    if world().size > 1:
        import torch.distributed as dist

        dist.barrier()


class ShardedDropout(nn.Dropout):
    """nn.Dropout whose mask is drawn for the global batch and sliced: each rank drops what 1 process would."""

    def __init__(self, p: float, w: World):
        super().__init__(p)
        self.w = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.numel() == 0:
            return x
        if self.p == 1.0:
            return x * 0
        per = x.shape[0]
        noise = torch.empty((per * self.w.size, *x.shape[1:]), dtype=x.dtype, device=x.device).bernoulli_(1 - self.p)
        noise = noise[self.w.rank * per:(self.w.rank + 1) * per].div_(1 - self.p)
        return x * noise


def shard_dropout(model: nn.Module, w: World) -> None:
    """Swap every nn.Dropout of `model` for a ShardedDropout (no parameters: checkpoints are unchanged)."""
    if w.size == 1:
        return
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, ShardedDropout(child.p, w))


def wrap(model: nn.Module, w: World) -> nn.Module:
    """DistributedDataParallel over `model` (the student only); the model itself outside a multi-process run."""
    if w.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    shard_dropout(model, w)
    # Layer-wise stages leave the heads (and progressive ones the other blocks) without a gradient. static_graph
    # would learn that once, but it breaks no_sync (gradient accumulation) in torch 2.13: walk the graph instead.
    return DDP(model, device_ids=[w.device.index] if w.device.type == "cuda" else None,
               find_unused_parameters=True)
