"""The fp32 eager model a program came from, rebuilt from its manifest: the reference for agreement checks.

torch is imported only when the reference must be computed: a run whose reference is cached pays nothing for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from program.manifest import ProgramManifest


def reference_module(manifest: ProgramManifest):
    """The eager ProgramModule, or None when it can't be rebuilt (checkpoint moved or changed)."""
    from harness.export.exporter import ExportRequest, ProgramModule, build_model, checkpoint_sha256

    if manifest.checkpoint:
        ckpt = Path(manifest.checkpoint)
        if not ckpt.is_dir() or checkpoint_sha256(ckpt) != manifest.checkpoint_sha256:
            return None
        req = ExportRequest(checkpoint=ckpt)
    elif manifest.model and manifest.model != "checkpoint":
        req = ExportRequest(model=manifest.model, head=manifest.head, num_labels=manifest.num_labels or 2)
    else:
        return None
    model, head, _, _ = build_model(req)
    return ProgramModule(model, head).eval()


def reference_outputs(module, encoded: dict[str, np.ndarray], batch: int = 16) -> list[np.ndarray]:
    """Every output of the eager fp32 model ([N, ...] float64, flattened per example), e.g. start and end logits."""
    import torch

    names = ("input_ids", "attention_mask", "token_type_ids")
    n = encoded["input_ids"].shape[0]
    chunks: list[list[np.ndarray]] = []
    with torch.no_grad():
        for i in range(0, n, batch):
            args = [torch.from_numpy(np.ascontiguousarray(encoded[k][i : i + batch])) for k in names]
            chunks.append([o.reshape(o.shape[0], -1).double().numpy() for o in module(*args)])
    return [np.concatenate(parts, axis=0) for parts in zip(*chunks)]


def _cache_key(manifest: ProgramManifest, encoded: dict[str, np.ndarray]) -> str:
    """What decides the reference outputs: the model (checkpoint sha256, or the preset with its head, labels and
    config: a preset's weights come from a fixed seed), torch's version and the encoded inputs, byte for byte."""
    import hashlib
    import json
    from importlib.metadata import version

    h = hashlib.sha256(json.dumps({
        "model": manifest.model, "checkpoint_sha256": manifest.checkpoint_sha256, "head": manifest.head,
        "num_labels": manifest.num_labels, "config": manifest.config, "torch": version("torch"),
    }, sort_keys=True, default=str).encode())
    for name in sorted(encoded):
        a = np.ascontiguousarray(encoded[name])
        h.update(f"{name}:{a.dtype}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cached_outputs(manifest: ProgramManifest, encoded: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    """reference_outputs of the manifest's model on these inputs, computed once and then read from the cache
    ($HARNESS_CACHE/references/KEY.npz, keyed by content): every run of every recipe of one checkpoint on one task
    shares it. None when the model can't be rebuilt (checkpoint moved or changed)."""
    from common.errors import StoreError
    from common.files import cache_dir, write_atomic

    if manifest.checkpoint and (not Path(manifest.checkpoint).is_dir()):
        return None
    path = cache_dir("references") / f"{_cache_key(manifest, encoded)}.npz"
    try:
        with np.load(path) as z:
            return [z[f"out{i}"] for i in range(len(z.files))]
    except (OSError, ValueError, KeyError):
        pass  # not there yet, or damaged: computed again below
    module = reference_module(manifest)
    if module is None:
        return None
    outs = reference_outputs(module, encoded)
    import io

    buf = io.BytesIO()
    np.savez(buf, **{f"out{i}": o for i, o in enumerate(outs)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, buf.getvalue())
    except (OSError, StoreError):
        pass  # a cache that cannot be written costs time next run, never this run's result
    return outs
