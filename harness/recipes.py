"""Quantization recipes: each a named object with one `lower` (eager model -> lowered edge program).

`harness recipes` lists them. A recipe owns the whole step from eager model to XNNPACK-lowered edge program because
the two quantization flows differ in order: torchao quantizes the eager model before export, PT2E after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from harness.errors import BadInput


@dataclass
class RecipeOptions:
    group_size: int = 32
    quant_embedding: str | None = None  # None | "8w" | "4w"
    keep_fp32: list[str] = field(default_factory=list)  # module-name patterns kept in float
    calibration: list[tuple[torch.Tensor, ...]] | None = None  # real inputs, for static recipes
    allow_partial: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "group_size": self.group_size,
            "quant_embedding": self.quant_embedding,
            "keep_fp32": list(self.keep_fp32),
            "calibration_examples": len(self.calibration) if self.calibration else 0,
        }


class Recipe:
    name = "abstract"
    description = ""
    needs_calibration = False

    def quantize_eager(self, model: torch.nn.Module, example_inputs: tuple, opts: RecipeOptions) -> torch.nn.Module:
        return model

    def partitioners(self, opts: RecipeOptions) -> list:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        return [XnnpackPartitioner()]

    def lower(self, model: torch.nn.Module, example_inputs: tuple, opts: RecipeOptions):
        """Eager model -> EdgeProgramManager lowered to XNNPACK."""
        from executorch.backends.xnnpack.utils.configs import get_transform_passes, get_xnnpack_edge_compile_config
        from executorch.exir import to_edge_transform_and_lower

        model = self.quantize_eager(model.eval(), example_inputs, opts)
        with torch.no_grad():
            ep = torch.export.export(model, example_inputs, strict=False)
        return to_edge_transform_and_lower(
            ep,
            partitioner=self.partitioners(opts),
            compile_config=get_xnnpack_edge_compile_config(),
            transform_passes=get_transform_passes(),
        )


class Fp32(Recipe):
    name = "fp32"
    description = "float32 weights and activations, XNNPACK"


RECIPES: dict[str, Recipe] = {r.name: r for r in (Fp32(),)}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise BadInput(f"unknown recipe --quant {name!r}; known: {', '.join(RECIPES)}") from None
