"""Scores the outputs a device brought back: the task metric, and agreement with the fp32 eager model."""

from __future__ import annotations

from typing import Any

import numpy as np


def logits_of(outputs: list[list[np.ndarray]]) -> np.ndarray:
    """[N, C] float64 from each example's first output (the classification logits)."""
    return np.concatenate([np.asarray(o[0], dtype=np.float64).reshape(1, -1) for o in outputs], axis=0)


def score(device_logits: np.ndarray, labels: np.ndarray | None, reference_logits: np.ndarray | None,
          gate_ratio: float = 0.99) -> dict[str, Any]:
    """Task accuracy, top-1 agreement and max relative logit error vs the reference, and the accuracy gate."""
    out: dict[str, Any] = {"n": int(device_logits.shape[0]), "metric": "accuracy"}
    pred = device_logits.argmax(axis=1)
    if labels is not None:
        out["value"] = float((pred == labels[: len(pred)]).mean())
    if reference_logits is not None:
        ref = reference_logits[: len(pred)]
        out["agreement_fp32"] = float((pred == ref.argmax(axis=1)).mean())
        denom = np.maximum(np.abs(ref).max(axis=1), 1e-12)
        out["max_rel_logit_error"] = float((np.abs(device_logits - ref).max(axis=1) / denom).max())
        if labels is not None:
            out["reference_value"] = float((ref.argmax(axis=1) == labels[: len(pred)]).mean())
            # MLPerf-style: the program keeps at least gate_ratio of the fp32 model's accuracy
            out["gate"] = {"ratio": gate_ratio,
                           "passed": bool(out["value"] >= gate_ratio * out["reference_value"])}
    return out
