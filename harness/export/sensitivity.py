"""Which layers a recipe hurts most: quantize one module group at a time, rank by the error it adds, and suggest
the smallest `--keep-fp32` set (greedy, worst first) that brings top-1 agreement back above the bar.

Variants are evaluated in eager torch on the recipe's own quantized model (`Recipe.prepare`), not lowered: lowering
each of 26 variants of the full model would take most of an hour. torchao's eager int8/int4 math matches the
XNNPACK kernels' scheme (per-token dynamic activations, same weight grid), so rankings carry over; the final
program's numbers come from `harness export`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import numpy as np
import torch

from common.errors import BadInput
from harness.export.numerics import as_outputs, per_example
from harness.export.recipes import RecipeOptions, get_recipe


def module_groups(model: torch.nn.Module) -> list[str]:
    """Each block of the layer stack (the longest ModuleList holding linears), then every other linear's owner."""
    stacks = [(n, m) for n, m in model.named_modules()
              if isinstance(m, torch.nn.ModuleList) and any(isinstance(x, torch.nn.Linear) for x in m.modules())]
    stack_name, stack = max(stacks, key=lambda s: len(s[1]), default=(None, []))
    groups = [f"{stack_name}.{i}" for i in range(len(stack))]
    ancestors = set()
    if stack_name:
        parts = stack_name.split(".")
        ancestors = {".".join(parts[:i]) for i in range(len(parts) + 1)}
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear) or (stack_name and name.startswith(stack_name + ".")):
            continue
        parent = name.rpartition(".")[0]
        group = name if parent in ancestors else parent
        if group not in groups:
            groups.append(group)
    return groups


def _display(groups: list[str], model: torch.nn.Module) -> dict[str, str]:
    """Drop the export wrapper's leading "model." so names read like the user's model (patterns match tails)."""
    strip = isinstance(getattr(model, "model", None), torch.nn.Module) and all(g.startswith("model.") for g in groups)
    return {g: g.removeprefix("model.") if strip else g for g in groups}


def _outputs(model: torch.nn.Module, eval_inputs: tuple[torch.Tensor, ...], batch: int = 16) -> list[np.ndarray]:
    parts = []
    with torch.no_grad():
        for s in range(0, eval_inputs[0].shape[0], batch):
            parts.append([o.float().numpy() for o in as_outputs(model(*(t[s : s + batch] for t in eval_inputs)))])
    return [np.concatenate(p) for p in zip(*parts)]


def _score(quantized: list[np.ndarray], reference: list[np.ndarray], mask: np.ndarray) -> dict[str, float]:
    rel, _, agree = per_example(quantized, reference, mask)
    return {"top1_agreement": float(agree.mean()), "mean_rel_logit_error": float(rel.mean()),
            "max_rel_logit_error": float(rel.max())}


def _as_tensors(inputs) -> tuple[torch.Tensor, ...]:
    values = inputs.values() if isinstance(inputs, dict) else inputs
    return tuple(torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for v in values)


def rank(model: torch.nn.Module, example_inputs: tuple, eval_inputs, recipe_name: str, opts: RecipeOptions,
         min_agreement: float, progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Per-group sensitivity of `recipe_name` on `eval_inputs` ([N, S] tensors in program input order), ranked."""
    recipe = get_recipe(recipe_name)
    if not recipe.quantizes_linears:
        raise BadInput(f"recipe {recipe_name} quantizes no layer; sensitivity needs int8, int8-static or int4")
    if not 0.0 <= min_agreement <= 1.0:
        raise BadInput(f"--min-agreement {min_agreement}: must be between 0 and 1")
    eval_inputs = _as_tensors(eval_inputs)
    if not eval_inputs or eval_inputs[0].shape[0] == 0:
        raise BadInput("sensitivity needs at least one evaluation example")
    mask = eval_inputs[1].numpy() if len(eval_inputs) > 1 else np.ones(tuple(eval_inputs[0].shape))
    model = model.eval()
    t0 = time.perf_counter()
    reference = _outputs(model, eval_inputs)
    groups = module_groups(model)
    names = _display(groups, model)
    user_keep = list(opts.keep_fp32)

    # PT2E graphs (int8-static) are specialised to the example's batch size; torchao's eager models take any
    batch = example_inputs[0].shape[0] if recipe.needs_calibration else 16

    def evaluate(keep: list[str], quant_embedding) -> dict[str, float]:
        variant = dataclasses.replace(opts, keep_fp32=user_keep + keep, quant_embedding=quant_embedding)
        quantized = recipe.prepare(model, example_inputs, variant)
        return _score(_outputs(quantized, eval_inputs, batch), reference, mask)

    progress(f"{recipe_name}: whole model")
    baseline = evaluate([], opts.quant_embedding)
    ranked = []
    for i, g in enumerate(groups):
        progress(f"{recipe_name}: only {names[g]} quantized ({i + 1}/{len(groups)})")
        # embedding tables are left out of per-group runs: each row isolates one group's linears
        ranked.append({"group": names[g], **evaluate([x for x in groups if x != g], None)})
    ranked.sort(key=lambda r: (r["mean_rel_logit_error"], -r["top1_agreement"]), reverse=True)

    keep: list[str] = []
    current = baseline
    for row in ranked:
        if current["top1_agreement"] >= min_agreement:
            break
        keep.append(row["group"])
        progress(f"{recipe_name}: keeping {', '.join(keep)} in float")
        current = evaluate(keep, opts.quant_embedding)
    return {
        "recipe": recipe_name,
        "options": opts.describe(),
        "n": int(eval_inputs[0].shape[0]),
        "min_agreement": min_agreement,
        "method": "torch on Recipe.prepare's quantized model (not lowered); one group quantized at a time",
        "baseline": baseline,
        "groups": ranked,
        "suggested_keep_fp32": keep,
        "suggested_agreement": current["top1_agreement"],
        "suggested_mean_rel_logit_error": current["mean_rel_logit_error"],
        "reached": current["top1_agreement"] >= min_agreement,
        "seconds": round(time.perf_counter() - t0, 2),
    }
