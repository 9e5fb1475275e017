"""Scores the outputs a device brought back: the task metric, and agreement with the fp32 eager model."""

from __future__ import annotations

from typing import Any

import numpy as np

from common.errors import ProgramError


def logits_of(outputs: list[list[np.ndarray]]) -> np.ndarray:
    """[N, C] float64 from each example's first output (the classification logits)."""
    return np.concatenate([np.asarray(o[0], dtype=np.float64).reshape(1, -1) for o in outputs], axis=0)


def score(device_logits: np.ndarray, labels: np.ndarray | None, reference_logits: np.ndarray | None,
          gate_ratio: float = 0.99) -> dict[str, Any]:
    """Task accuracy, top-1 agreement and max relative logit error vs the reference, and the accuracy gate."""
    out: dict[str, Any] = {"n": int(device_logits.shape[0]), "metric": "accuracy"}
    pred = device_logits.argmax(axis=1)
    out["predicted_share"] = _shares(pred)  # what the program answered, class by class
    if labels is not None:
        out["value"] = float((pred == labels[: len(pred)]).mean())
        out["label_share"] = _shares(labels[: len(pred)])  # the balance accuracy and agreement were measured on
    if len(pred) >= 2 and len(set(pred.tolist())) == 1:
        # An untrained or collapsed model: its accuracy is the share of that class, and it agrees with any reference
        # that also answers mostly that class. Said wherever the accuracy is shown.
        out["one_class"] = {"class": int(pred[0]), "n": int(len(pred))}
        out["one_class_note"] = (f"one class ({int(pred[0])}) for all {len(pred):,}: accuracy = that class's share"
                                 + (f" ({out['label_share'].get(str(int(pred[0])), 0.0):.4f})" if labels is not None
                                    else "") + "; agreement is trivial")
    if reference_logits is not None:
        ref = reference_logits[: len(pred)]
        out["agreement_fp32"] = float((pred == ref.argmax(axis=1)).mean())
        out["reference_share"] = _shares(ref.argmax(axis=1))  # agreement with a model that answers one class is cheap
        denom = np.maximum(np.abs(ref).max(axis=1), 1e-12)
        out["max_rel_logit_error"] = float((np.abs(device_logits - ref).max(axis=1) / denom).max())
        if labels is not None:
            out["reference_value"] = float((ref.argmax(axis=1) == labels[: len(pred)]).mean())
            # MLPerf-style: the program keeps at least gate_ratio of the fp32 model's accuracy
            out["gate"] = {"ratio": gate_ratio,
                           "passed": bool(out["value"] >= gate_ratio * out["reference_value"])}
    return out


def balance(acc: dict[str, Any]) -> str:
    """The class balance an agreement was measured on, for the run line and the report: 'labels 0: 36%, 1: 64%;
    fp32 answered 0: 100%' (what is known of it; empty when nothing is)."""
    def text(shares: dict[str, float]) -> str:
        return ", ".join(f"{c}: {v:.0%}" for c, v in sorted(shares.items(), key=lambda kv: int(kv[0])))

    parts = []
    if isinstance(acc.get("label_share"), dict):
        parts.append("labels " + text(acc["label_share"]))
    if isinstance(acc.get("reference_share"), dict):
        parts.append("fp32 answered " + text(acc["reference_share"]))
    return "; ".join(parts)


def _shares(values: np.ndarray) -> dict[str, float]:
    """{class: share of the examples}, classes as strings (JSON keys)."""
    classes, counts = np.unique(np.asarray(values), return_counts=True)
    return {str(int(c)): round(float(k) / len(values), 4) for c, k in zip(classes, counts)}


def score_squad(outputs: list[list[np.ndarray]], run_inputs, manifest, gate_ratio: float = 0.99) -> dict[str, Any]:
    """SQuAD exact match and F1 of the device's start/end logits, and of the fp32 eager model's on the same windows.

    The gate is MLPerf's: the program keeps at least gate_ratio of the fp32 model's F1.
    """
    from harness.run import squad

    task, feats = run_inputs.qa
    if len(outputs[0]) < 2:
        raise ProgramError("--task on question answering needs a program returning start and end logits")
    start = np.concatenate([np.asarray(o[0], dtype=np.float64).reshape(1, -1) for o in outputs])
    end = np.concatenate([np.asarray(o[1], dtype=np.float64).reshape(1, -1) for o in outputs])
    v2 = task.version == "2.0"
    preds = squad.predict(task.examples, feats, start, end, version_2=v2)
    metrics = squad.evaluate(task.examples, preds, version_2=v2)
    out: dict[str, Any] = {"task": task.name, "n": metrics["n"], "windows": len(feats.offsets), "metric": "f1",
                           "squad_version": task.version, "exact_match": metrics["exact_match"]}
    random_weights = manifest is not None and manifest.random_weights
    if not random_weights:
        out["value"] = metrics["f1"]
    ref = _reference_outputs(manifest, feats.arrays) if manifest is not None else None
    if ref is None:
        out["note"] = "fp32 reference unavailable (checkpoint moved or changed)" if manifest is not None else None
    else:
        ref_preds = squad.predict(task.examples, feats, ref[0], ref[1], version_2=v2)
        ids = [ex.id for ex in task.examples]
        out["agreement_fp32"] = float(np.mean([preds[i] == ref_preds[i] for i in ids]))
        both, ref_both = np.concatenate([start, end], axis=1), np.concatenate([ref[0], ref[1]], axis=1)
        denom = np.maximum(np.abs(ref_both).max(axis=1), 1e-12)
        out["max_rel_logit_error"] = float((np.abs(both - ref_both).max(axis=1) / denom).max())
        if not random_weights:
            ref_metrics = squad.evaluate(task.examples, ref_preds, version_2=v2)
            out["reference_value"] = ref_metrics["f1"]
            out["reference_exact_match"] = ref_metrics["exact_match"]
            out["gate"] = {"ratio": gate_ratio, "passed": bool(out["value"] >= gate_ratio * out["reference_value"])}
    if random_weights:
        out["note"] = "untrained (random) weights: F1 not meaningful, agreement only"
    out["samples"] = [{"id": ex.id, "question": ex.question, "prediction": preds[ex.id], "answers": ex.answers[:3]}
                      for ex in task.examples[:5]]
    return {k: v for k, v in out.items() if v is not None}


def _reference_outputs(manifest, arrays: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    from harness.run import reference

    return reference.cached_outputs(manifest, arrays)
