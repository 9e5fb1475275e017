"""Static int8 (PT2E): XNNPACKQuantizer with per-channel weights and activation ranges calibrated on real text.

The stock quantizer's annotation transform turns every scalar operand of add/mul into a float32 tensor constant,
including integer ones. BERT-style mask code does integer arithmetic on positions (arange + offset, mask * k), so the
integer result becomes float and the later index op fails ("tensors used as indices must be long ..."). Only float
arithmetic has activations to observe, so `MaskSafeXNNPACKQuantizer` lifts scalars of float-valued ops only.
"""

from __future__ import annotations

from typing import Iterable

import torch
from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
    XNNPACKQuantizer,
    get_symmetric_quantization_config,
)

from common.errors import BadInput
from harness.export.quantize.select import is_kept

_SCALAR_OPS = (torch.ops.aten.add.Tensor, torch.ops.aten.mul.Tensor)


def _is_float_node(n: torch.fx.Node) -> bool:
    val = n.meta.get("val")
    return isinstance(val, torch.Tensor) and val.dtype.is_floating_point


def lift_float_scalars(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Scalar operands of float add/mul become tensor constants (so they can be observed); integer ops are left alone."""
    from torchao.quantization.pt2e.utils import get_new_attr_name_with_prefix

    for n in list(gm.graph.nodes):
        if n.op != "call_function" or n.target not in _SCALAR_OPS or not _is_float_node(n):
            continue
        new_args = []
        for a in n.args:
            if isinstance(a, torch.fx.Node) or not isinstance(a, (int, float)):
                new_args.append(a)
                continue
            attr = get_new_attr_name_with_prefix("_tensor_constant_")(gm)
            const = torch.tensor(float(a), dtype=n.meta["val"].dtype)
            gm.register_buffer(attr, const)
            with gm.graph.inserting_before(n):
                node = gm.graph.create_node("get_attr", attr, (), {})
                node.meta["val"] = n.meta["val"].fake_mode.from_tensor(const, static_shapes=True)
            new_args.append(node)
        n.args = tuple(new_args)
    gm.recompile()
    return gm


def _has_conv(model: torch.fx.GraphModule) -> bool:
    return any(n.op == "call_function" and "conv" in str(n.target) for gm in model.modules()
               if isinstance(gm, torch.fx.GraphModule) for n in gm.graph.nodes)


class MaskSafeXNNPACKQuantizer(XNNPACKQuantizer):
    def transform_for_annotation(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        return lift_float_scalars(model)

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        """The stock annotation, without the convolution patterns on a graph that holds no convolution: their
        annotators match nothing there, yet the conv+batch-norm ones export 12 pattern graphs with dynamo on every
        call (about two thirds of a tiny model's quantization time here; the same seconds at full size)."""
        if not _has_conv(model):
            self.SUPPORTED_PATTERNS = [p for p in XNNPACKQuantizer.SUPPORTED_PATTERNS if "conv" not in p.name]
        try:
            return super().annotate(model)
        finally:
            self.__dict__.pop("SUPPORTED_PATTERNS", None)


def _module_names(n: torch.fx.Node) -> list[str]:
    return [path.removeprefix("L['self'].") for path, _ in n.meta.get("nn_module_stack", {}).values()]


def make_quantizer(keep: Iterable[str] = ()) -> XNNPACKQuantizer:
    keep = list(keep)
    q = MaskSafeXNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    if keep:  # nodes traced from a kept module get no annotation, so they stay float
        q.set_filter_function(lambda n: not any(is_kept(name, keep) for name in _module_names(n) if name))
    return q


def quantize_static(model: torch.nn.Module, example_inputs: tuple, calibration, keep: Iterable[str] = ()):
    """Eager model -> converted PT2E GraphModule (quantize/dequantize pairs around int8 ops), calibrated."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if not calibration:
        raise BadInput("recipe int8-static needs calibration data: pass --calibration N (N >= 1 real examples)")
    with torch.no_grad():
        gm = torch.export.export(model, example_inputs, strict=False).module()
        prepared = prepare_pt2e(gm, make_quantizer(keep))
        for batch in calibration:
            prepared(*batch)
        return convert_pt2e(prepared)
