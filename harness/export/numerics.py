"""How far a program's outputs are from the fp32 eager model's on the same real inputs, and the gate on it.

The program runs in-process through executorch.runtime (the quantized embedding kernels are loaded too), one
program-sized batch at a time; the reference runs in torch on the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.errors import BadInput, ProgramError


def _load_method(program: str | Path | bytes):
    from program.pte import load_forward

    if not isinstance(program, (bytes, bytearray)) and not Path(program).is_file():
        raise ProgramError(f"program {program} does not exist")
    try:
        return load_forward(program)
    except RuntimeError as e:
        raise ProgramError(f"program {program if not isinstance(program, bytes) else '<bytes>'} "
                           f"cannot be loaded: {e}") from None


def as_outputs(out) -> tuple[torch.Tensor, ...]:
    """A model's or program's outputs as a tuple of tensors (a bare tensor, a tuple, or an output with .logits)."""
    if isinstance(out, torch.Tensor):
        return (out,)
    if hasattr(out, "logits"):
        return (out.logits,)
    return tuple(out)


def per_example(q: list[np.ndarray], r: list[np.ndarray], mask: np.ndarray):
    """-> (relative L2 error, max abs error, top-1 agreement) of each example, over all of its outputs."""
    n = mask.shape[0]
    diff = np.zeros(n)
    norm = np.zeros(n)
    abs_err = np.zeros(n)
    agree, count = np.zeros(n), np.zeros(n)
    for qo, ro in zip(q, r):
        d = (qo - ro).reshape(n, -1)
        diff += (d**2).sum(1)
        norm += (ro.reshape(n, -1) ** 2).sum(1)
        abs_err = np.maximum(abs_err, np.abs(d).max(1))
        same = qo.argmax(-1) == ro.argmax(-1)  # [n] per sequence, or [n, S] per token
        if same.ndim == 2 and same.shape[1] == mask.shape[1]:
            w = mask.astype(bool)  # per-token outputs (masked LM): only real tokens count
            agree += (same & w).sum(1)
            count += w.sum(1)
        else:
            same = same.reshape(n, -1)
            agree += same.sum(1)
            count += same.shape[1]
    rel = np.sqrt(diff) / np.maximum(np.sqrt(norm), 1e-12)
    return rel, abs_err, agree / np.maximum(count, 1)


def _batches(arrays: list[np.ndarray], batch: int):
    """(rows kept, input tensors) per program-sized batch; the last wraps around to fill the program's shape."""
    n = arrays[0].shape[0]
    for start in range(0, n, batch):
        rows = np.arange(start, start + batch) % n
        yield min(batch, n - start), [torch.from_numpy(np.ascontiguousarray(a[rows])) for a in arrays]


def eager_outputs(model: torch.nn.Module, inputs: dict[str, np.ndarray], batch: int) -> list[np.ndarray]:
    """The fp32 eager model's outputs on the rows, [n, ...] float32 per output, in batches of the program's size."""
    arrays = [np.asarray(inputs[k]) for k in inputs]
    parts = []
    model = model.eval()
    with torch.no_grad():
        for keep, tensors in _batches(arrays, batch):
            parts.append([o.detach().float().numpy()[:keep] for o in as_outputs(model(*tensors))])
    return [np.concatenate(p) for p in zip(*parts)]


def cached_eager_outputs(manifest, model: torch.nn.Module, inputs: dict[str, np.ndarray], batch: int) -> list[np.ndarray]:
    """eager_outputs, computed once per model, inputs and batch, then read from $HARNESS_CACHE/references: every
    recipe of one checkpoint checks its numerics against the same fp32 outputs, so the fp32, int8 and int4
    exports of a model run the eager model once between them."""
    from harness.export import references

    return references.cached(f"numerics-{references.key(manifest, inputs, f'batch {batch}')}",
                             lambda: eager_outputs(model, inputs, batch))


def measure(program: str | Path | bytes, reference, inputs: dict[str, np.ndarray],
            labels=None) -> dict[str, Any]:
    """Program vs fp32 eager on the same rows: relative logit error, top-1 agreement, task accuracy of both.
    `reference`: the fp32 eager module, or its outputs on the rows already (eager_outputs at the program's batch)."""
    names = list(inputs)
    arrays = [np.asarray(inputs[k]) for k in names]
    n = arrays[0].shape[0] if arrays else 0
    if n == 0:
        raise BadInput("numerics need at least one input example")
    method = _load_method(program)
    meta = method.metadata
    if meta.num_inputs() != len(names):
        raise ProgramError(f"program takes {meta.num_inputs()} inputs, got {len(names)} ({', '.join(names)})")
    batch = meta.input_tensor_meta(0).sizes()[0]
    q_out = [[o.detach().float().numpy()[:keep] for o in as_outputs(method.execute(tensors))]
             for keep, tensors in _batches(arrays, batch)]
    q = [np.concatenate(parts) for parts in zip(*q_out)]
    r = eager_outputs(reference, inputs, batch) if isinstance(reference, torch.nn.Module) else list(reference)
    mask = np.asarray(inputs["attention_mask"]) if "attention_mask" in inputs else np.ones(arrays[0].shape)
    rel, abs_err, agree = per_example(q, r, mask)
    result: dict[str, Any] = {
        "n": int(n),
        "top1_agreement": float(agree.mean()),
        "max_rel_logit_error": float(rel.max()),
        "mean_rel_logit_error": float(rel.mean()),
        "median_rel_logit_error": float(np.median(rel)),
        "max_abs_logit_error": float(abs_err.max()),
    }
    ref0 = r[0].reshape(n, -1)
    if q[0].reshape(n, -1).shape[1] == ref0.shape[1] >= 2 and r[0].ndim == 2:  # one answer per example: a class
        flipped = np.flatnonzero(agree < 1)
        top2 = np.sort(ref0[flipped], axis=1)[:, -2:]
        scale = max(float(np.median(np.linalg.norm(ref0, axis=1))), 1e-12)
        # how close fp32 itself was to the program's answer, as a share of a typical example's logits (the scale the
        # recipe's error bar is in): a flip there is a boundary flip that error can explain
        result["flip_margins"] = [round(float(m), 6) for m in (top2[:, 1] - top2[:, 0]) / scale]
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != n:
            raise BadInput(f"{labels.shape[0]} labels for {n} examples")
        result["accuracy"] = float((q[0].reshape(n, -1).argmax(1) == labels).mean())
        result["reference_accuracy"] = float((r[0].reshape(n, -1).argmax(1) == labels).mean())
    return result


def gate(numerics: dict[str, Any], min_agreement: float, max_rel_error: float | None = None,
         recipe: str = "the recipe") -> tuple[bool, str]:
    """(passed, one-line reason). Two bars (docs/quantization.md, "The numerics gate"):

    - top-1 agreement with fp32 at or over --min-agreement, where a boundary flip (an example fp32 itself answered
      by a margin within `max_rel_error` of its logits) is not counted against it;
    - the median example's relative logit error at or under `max_rel_error`, the recipe's bar: agreement alone is
      trivial for a model that answers one class, and says nothing of logits a quarter off.
    """
    if not 0.0 <= min_agreement <= 1.0:
        raise BadInput(f"--min-agreement {min_agreement}: must be between 0 and 1")
    agree = numerics.get("top1_agreement")
    if agree is None:
        return False, "numerics were not measured"
    n = numerics.get("n", "?")
    margins = numerics.get("flip_margins") or []
    boundary = sum(m <= max_rel_error for m in margins) if max_rel_error is not None and isinstance(n, int) else 0
    counted = agree + boundary / n if boundary else agree
    forgiven = f", {boundary} boundary flip{'s' if boundary > 1 else ''} not counted" if boundary else ""
    if counted < min_agreement:
        return False, (f"top-1 agreement with fp32 eager {agree:.4f} on {n} examples is below --min-agreement "
                       f"{min_agreement}{forgiven} (max rel logit error "
                       f"{numerics.get('max_rel_logit_error', float('nan')):.3g})")
    typical = numerics.get("median_rel_logit_error", numerics.get("mean_rel_logit_error"))
    if max_rel_error is not None and typical is not None and typical > max_rel_error:
        return False, (f"median relative logit error {typical:.3g} on {n} examples is over {recipe}'s bar "
                       f"{max_rel_error:g} (docs/quantization.md): the program's logits are not the fp32 model's, "
                       f"whatever its top-1 agreement ({agree:.4f})")
    bar = f", median rel logit error {typical:.3g} <= {max_rel_error:g}" if max_rel_error is not None else ""
    if boundary:
        return True, (f"top-1 agreement {agree:.4f} on {n} examples, {boundary} boundary flip{'s' if boundary > 1 else ''}"
                      f" not counted: {counted:.4f} >= {min_agreement}{bar}")
    return True, f"top-1 agreement {agree:.4f} >= {min_agreement} on {n} examples{bar}"
