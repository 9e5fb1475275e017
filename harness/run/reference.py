"""The fp32 eager model a program came from, rebuilt from its manifest: the reference for agreement checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harness.export.manifest import ProgramManifest


def reference_module(manifest: ProgramManifest) -> torch.nn.Module | None:
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


def reference_logits(module: torch.nn.Module, encoded: dict[str, np.ndarray], batch: int = 16) -> np.ndarray:
    """[N, C] logits of the eager fp32 model (first output, flattened per example)."""
    return reference_outputs(module, encoded, batch)[0]


@torch.no_grad()
def reference_outputs(module: torch.nn.Module, encoded: dict[str, np.ndarray], batch: int = 16) -> list[np.ndarray]:
    """Every output of the eager fp32 model ([N, ...] float64, flattened per example), e.g. start and end logits."""
    names = ("input_ids", "attention_mask", "token_type_ids")
    n = encoded["input_ids"].shape[0]
    chunks: list[list[np.ndarray]] = []
    for i in range(0, n, batch):
        args = [torch.from_numpy(np.ascontiguousarray(encoded[k][i : i + batch])) for k in names]
        chunks.append([o.reshape(o.shape[0], -1).double().numpy() for o in module(*args)])
    return [np.concatenate(parts, axis=0) for parts in zip(*chunks)]
