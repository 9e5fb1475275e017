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


def cached_outputs(manifest: ProgramManifest, encoded: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    """reference_outputs of the manifest's model on these inputs, computed once and then read from the cache
    (harness/export/references.py, keyed by content): every run of every recipe of one checkpoint on one task
    shares it. None when the model can't be rebuilt (checkpoint moved or changed)."""
    from harness.export import references

    if manifest.checkpoint and (not Path(manifest.checkpoint).is_dir()):
        return None

    def compute():
        module = reference_module(manifest)
        return None if module is None else reference_outputs(module, encoded)

    return references.cached(references.key(manifest, encoded), compute)
