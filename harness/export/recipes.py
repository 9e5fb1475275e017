"""Quantization recipes: each a named object with one `lower` (eager model -> XNNPACK-lowered edge program).

`harness recipes` lists them. A recipe owns the whole step from eager model to lowered program because the two
quantization flows differ in order: torchao quantizes the eager model before export, PT2E after. `prepare` is the
eager half alone (the quantized model, runnable in torch), which `harness sensitivity` evaluates without lowering.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common.errors import BadInput
from harness.export.quantize import select

if TYPE_CHECKING:  # torch is imported where it is used: `harness recipes` lists recipes without it
    import torch

XNNPACK_GROUP_MULTIPLE = 32  # XNNPACK's blockwise int4 kernels take groups of 32k weights
PER_ROW = 0  # --group-size row: one int4 scale per output row (ExecuTorch lowers it as one block of in_features)


def check_group_size(g: int) -> None:
    """--group-size alone, before any model is built: a positive multiple of XNNPACK's unit, or PER_ROW."""
    if g != PER_ROW and (g <= 0 or g % XNNPACK_GROUP_MULTIPLE):
        raise BadInput(f"--group-size {g}: XNNPACK's int4 kernels need a positive multiple of "
                       f"{XNNPACK_GROUP_MULTIPLE} (32, 64, 128) or `row` (one group per row)")


@dataclass
class RecipeOptions:
    group_size: int = 32  # int4 weight groups (and int4 embedding groups); PER_ROW (0): one group per row
    quant_embedding: str | None = None  # None | "8w" | "4w"
    keep_fp32: list[str] = field(default_factory=list)  # module-name glob patterns kept in float
    calibration: list[tuple[torch.Tensor, ...]] | None = None  # real inputs, for static recipes
    allow_partial: bool = False
    graph_rewrites: bool = True  # harness.export.rewrites (off: the published module graph, for comparisons)

    def describe(self) -> dict[str, Any]:
        d = {
            "group_size": self.group_size,
            "quant_embedding": self.quant_embedding,
            "keep_fp32": list(self.keep_fp32),
            "calibration_examples": len(self.calibration) if self.calibration else 0,
        }
        if not self.graph_rewrites:  # named only when off: the manifests of default programs keep their keys
            d["graph_rewrites"] = False
        return d


class Recipe:
    name = "abstract"
    description = ""
    needs_calibration = False
    quantizes_linears = False  # whether --keep-fp32 can mean anything beyond the embedding tables
    carry_scales = False  # rewrites may fold norms into the input side of linears (float weights only)
    # The numerics gate's logit bar: the median example's relative logit error (||program - fp32|| / ||fp32||) must
    # stay at or under it. Several times what the recipe measures on trained and untrained MobileBERTs here, and
    # under the 0.25 of a program whose logits are a quarter off (docs/quantization.md, "The numerics gate"). fp32:
    # lowered vs eager differ by float rounding alone (<= 6e-7 here), so 1e-3 fails a program that computes another
    # function, such as the NoNorm+GELU model once lowered with ReLU (median error ~1e-2, which passed the old 0.01).
    max_rel_logit_error = 1e-3

    def check_options(self, opts: RecipeOptions) -> None:
        """Refuse options no model could honour (checked before a model is even built)."""
        if opts.quant_embedding not in (None, "8w", "4w"):
            raise BadInput(f"--quant-embedding {opts.quant_embedding!r}: expected 8w or 4w")
        if opts.keep_fp32 and not (self.quantizes_linears or opts.quant_embedding):
            raise BadInput(f"--keep-fp32 has nothing to keep: recipe {self.name} quantizes no module "
                           "(use it with int8, int8-static, int4 or --quant-embedding)")

    def check(self, model: torch.nn.Module, opts: RecipeOptions) -> None:
        """Refuse options this model cannot honour, before any slow work."""
        self.check_options(opts)
        select.check_patterns(model, opts.keep_fp32)

    def quantize_eager(self, model: torch.nn.Module, example_inputs: tuple, opts: RecipeOptions) -> torch.nn.Module:
        """Quantize a private copy of the model in place and return what to export."""
        return model

    def prepare(self, model: torch.nn.Module, example_inputs: tuple, opts: RecipeOptions) -> torch.nn.Module:
        """The recipe's quantized model, runnable in torch; the caller's model is left untouched (it is the reference)."""
        self.check(model, opts)
        model = copy.deepcopy(model).eval()
        if opts.graph_rewrites and not opts.keep_fp32:  # --keep-fp32 names the published modules: left as they are
            from harness.export.rewrites import rewrite

            model = rewrite(model, carry_scales=self.carry_scales, fold_tables=not opts.quant_embedding,
                            copy_first=False)
        if opts.quant_embedding:
            from harness.export.quantize.embedding import quantize_embeddings

            quantize_embeddings(model, opts.quant_embedding, opts.group_size, opts.keep_fp32)
        return self.quantize_eager(model, example_inputs, opts)

    def partitioners(self, opts: RecipeOptions) -> list:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        return [XnnpackPartitioner()]

    def lower(self, model: torch.nn.Module, example_inputs: tuple, opts: RecipeOptions):
        """Eager model -> EdgeProgramManager lowered to XNNPACK."""
        from executorch.backends.xnnpack.utils.configs import get_transform_passes, get_xnnpack_edge_compile_config
        from executorch.exir import to_edge_transform_and_lower

        import torch

        from harness.export.fast_lowering import faster_lowering

        with torch.no_grad():
            prepared = self.prepare(model, example_inputs, opts)
        # export inside too: on int8 MobileBERT the lowering after it then takes ~10 s less (measured, same program)
        with faster_lowering():
            with torch.no_grad():
                ep = torch.export.export(prepared, example_inputs, strict=False)
            try:
                return to_edge_transform_and_lower(
                    ep,
                    partitioner=self.partitioners(opts),
                    compile_config=get_xnnpack_edge_compile_config(),
                    transform_passes=get_transform_passes(),
                )
            finally:
                forget_lowered_graphs()  # the returned manager keeps what it needs; ExecuTorch's globals let go


def forget_lowered_graphs() -> None:
    """What ExecuTorch keeps of a lowering after it is done, let go: XNNPACK's partitioner configs keep a
    module-level WhyNoPartition holding the last node they refused, and exir.backend.utils.is_same_node is an
    unbounded lru_cache keyed by nodes; through those nodes each keeps its graph, the lowered module and the
    original ExportedProgram with every weight, about 200 MB resident per full-size export in a process that exports
    several (a pool worker, a sweep)."""
    import sys

    from executorch.exir.backend.utils import WhyNoPartition, is_same_node

    is_same_node.cache_clear()

    for name, module in list(sys.modules.items()):
        if name.startswith("executorch.backends.") and module is not None:
            for value in list(vars(module).values()):
                if isinstance(value, WhyNoPartition):
                    value.node = None


def serialize(edge):
    """A recipe's lowered EdgeProgramManager -> the ExecutorchProgramManager `harness export` writes."""
    from executorch.backends.xnnpack.utils.configs import get_xnnpack_executorch_backend_config

    from harness.export.fast_lowering import faster_lowering  # looked up here: tests and benchmarks swap it out

    with faster_lowering():  # its passes re-evaluate the delegate on fake tensors: memoized like lowering's
        return edge.to_executorch(get_xnnpack_executorch_backend_config())


class Fp32(Recipe):
    name = "fp32"
    description = "float32 weights and activations, XNNPACK"
    carry_scales = True


def _float_outputs(inner: torch.nn.Module) -> torch.nn.Module:
    """Runs a half-precision model and hands back float32, so every program has the same output dtypes."""
    import torch

    class FloatOutputs(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            out = self.inner(*args)
            return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

    return FloatOutputs(inner)


class Fp16(Recipe):
    name = "fp16"
    max_rel_logit_error = 0.05
    description = "float16 weights and activations (XNNPACK fp16 kernels), float32 outputs"

    def check_options(self, opts):
        if opts.keep_fp32:
            raise BadInput("--keep-fp32 is not supported with recipe fp16 (mixed fp16/fp32 graphs are not lowered)")
        super().check_options(opts)

    def quantize_eager(self, model, example_inputs, opts):
        return _float_outputs(model.half())


class _TorchaoLinear(Recipe):
    max_rel_logit_error = 0.15
    """Dynamic int8 activations (per token, asymmetric) x symmetric integer weights, via torchao `quantize_`."""

    quantizes_linears = True
    weight_dtype = "int8"  # a torch dtype name: torch is imported only to quantize

    def granularity(self, opts: RecipeOptions):
        from torchao.quantization import PerAxis

        return PerAxis(0)

    def quantize_eager(self, model, example_inputs, opts):
        import torch
        from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_

        config = Int8DynamicActivationIntxWeightConfig(
            weight_dtype=getattr(torch, self.weight_dtype), weight_granularity=self.granularity(opts))
        quantize_(model, config, filter_fn=select.linear_filter(opts.keep_fp32))
        return model


class Int8(_TorchaoLinear):
    name = "int8"
    description = "int8 dynamic activations x int8 per-channel weights (torchao), XNNPACK"


class Int4(_TorchaoLinear):
    name = "int4"
    description = ("int8 dynamic activations x int4 weights in groups of --group-size, or one scale per row with "
                   "--group-size row (torchao), XNNPACK")
    weight_dtype = "int4"

    def check(self, model, opts):
        super().check(model, opts)
        g = opts.group_size
        check_group_size(g)
        linears = select.quantized_linears(model, opts.keep_fp32)
        if g == PER_ROW:  # ExecuTorch hands XNNPACK a row as one group of in_features weights: the same multiple
            for name, lin in linears:
                if lin.in_features % XNNPACK_GROUP_MULTIPLE:
                    raise BadInput(f"--group-size row: the {lin.in_features}-wide input of {name} is not a multiple "
                                   f"of {XNNPACK_GROUP_MULTIPLE}, which XNNPACK's int4 kernels need (keep {name} in "
                                   "float with --keep-fp32)")
            return
        for name, lin in linears:
            if lin.in_features % g:
                width = math.gcd(*(m.in_features for _, m in linears))
                fits = [d for d in range(XNNPACK_GROUP_MULTIPLE, g + 1, XNNPACK_GROUP_MULTIPLE) if width % d == 0]
                hint = f"--group-size {fits[-1]} fits every layer" if fits else f"keep {name} in float (--keep-fp32)"
                raise BadInput(f"--group-size {g} does not divide the {lin.in_features}-wide input of {name}; "
                               f"int4 groups must tile every row ({hint})")

    def granularity(self, opts):
        from torchao.quantization import PerAxis, PerGroup

        return PerAxis(0) if opts.group_size == PER_ROW else PerGroup(opts.group_size)


class Int8Static(Recipe):
    name = "int8-static"
    max_rel_logit_error = 0.15
    description = "int8 activations with ranges calibrated on real text x int8 per-channel weights (PT2E), XNNPACK"
    needs_calibration = True
    quantizes_linears = True

    # No check of opts.calibration here: export() checks recipes before it reads the calibration examples
    # (--calibration N, default 64; N < 1 is refused by harness.export.request.validate, before torch is imported),
    # and quantize_static refuses a lowering without them.

    def quantize_eager(self, model, example_inputs, opts):
        from harness.export.quantize.static import quantize_static

        return quantize_static(model, example_inputs, opts.calibration, opts.keep_fp32)


RECIPES: dict[str, Recipe] = {r.name: r for r in (Fp32(), Fp16(), Int8(), Int8Static(), Int4())}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise BadInput(f"unknown recipe --quant {name!r}; known: {', '.join(RECIPES)}") from None
