"""Re-traces that cannot change the graph, not run: idle XNNPACK passes and decompositions with nothing to decompose.

Every pass of a lowering re-traces the whole ~5,900-node int8 MobileBERT graph (~3-6 s each). Two kinds of them are
known, before they run, to hand the graph back as it was:

1. XnnpackBackend.preprocess runs 17 passes. Ten act only on ops an encoder never has (batch norm, convolution,
   PReLU, bilinear upsampling, padding, max-pooling, dim-order and dtype copies) or on the masked-SDPA pattern, and
   one only on a concatenation of more than five tensors. Three more act only on what a graph may lack:
   ConvertToLinearPass on matmuls that are not linear yet and view copies around a linear (XNNPACK keeps an
   encoder's aten.linear whole), ConstPropPass on a call whose inputs are all constants, PropagateCustomMetaPass on
   a quantized value whose parent carries custom metadata (together ~5 s of a full int8 export). Each is wrapped so
   that, when it would run, it checks the graph and hands it back untouched if it cannot act. The trigger sets and
   conditions come from each pass's source in executorch 1.5.1 (pinned); the pattern passes' sets are checked
   against the patterns themselves in the tests, so a version whose patterns change fails there, not silently.
2. ExecuTorch's XNNPACK path decomposes three times (see `skip_settled_decompositions`); the last has nothing left
   to do when XNNPACK took every op it asked to keep.
3. `to_edge` runs ExecuTorch's aten-to-edge passes; four of them re-trace the whole graph to rewrite ops a graph
   may not have: `aten.t` (NormalizeTransposePass), view ops left after the view-copy pass
   (ReplaceBrokenOpsWithFunctionalOpsPass), symbolic scalars fed to tensor arguments (SymToTensorPass) and
   arithmetic on mixed dtypes (RemoveMixedTypeOperators). They are wrapped the same way (`skip_idle_edge_passes`),
   with conditions read from each pass's `call_operator` in executorch 1.5.1: together about 6 s of a full int8
   export (1.4-2.0 s each).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from typing import Callable, Iterator

import torch

from harness.export.fast_lowering.memo import op_name

# pass class name -> ops (by OpOverload name) of which the graph must contain ALL for the pass to possibly act
REQUIRES_ALL: dict[str, frozenset[str]] = {
    # its patterns are the masked SDPA decomposition: every one has these ops (tests check)
    "ConvertToSDPAPass": frozenset({"aten.any.dim", "aten.where.self", "aten.logical_not.default",
                                    "aten._softmax.default", "aten.bmm.default"}),
    "ConvertToUpsampleBilinear2d": frozenset({"aten.upsample_bilinear2d.vec"}),
}
# pass class name -> ops of which the graph must contain ANY for the pass to possibly act
REQUIRES_ANY: dict[str, frozenset[str]] = {
    "FuseBatchNormPass": frozenset({"aten.native_batch_norm.default",
                                    "aten._native_batch_norm_legit_no_training.default"}),
    "DecomposeBatchNorm": frozenset({"aten.native_batch_norm.default",
                                     "aten._native_batch_norm_legit_no_training.default"}),
    "Conv1dUnsqueezePass": frozenset({"aten.convolution.default"}),
    "PReLUReshapePass": frozenset({"aten._prelu_kernel.default"}),
    "InsertPadQDQPass": frozenset({"aten.constant_pad_nd.default"}),
    # rewrites only the dim-order ops back to memory-format ops (its call_operator; executorch's MemoryFormatOpsMap)
    "DimOrderOpsRevertPass": frozenset({"dim_order_ops._to_dim_order_copy.default",
                                        "dim_order_ops._empty_dim_order.default",
                                        "dim_order_ops._clone_dim_order.default"}),
    # drops the getitem after a max-pool-with-indices or max.dim, nothing else
    "RemoveGetItemPass": frozenset({"aten.max_pool2d_with_indices.default", "aten.max.dim"}),
    # looks at _to_copy nodes only
    "RemoveRedundantCopyPass": frozenset({"aten._to_copy.default"}),
    # to_edge's (EDGE_PASSES): its call_operator rewrites aten.t only
    "NormalizeTransposePass": frozenset({"aten.t.default"}),
}
# pass class name -> whether the pass can act on this graph, where op presence is not enough to tell
CAN_ACT: dict[str, Callable[[torch.fx.GraphModule], bool]] = {
    # splits a concatenation of more than 5 tensors (XNNPACK's most); MobileBERT's trigram embedding joins 3
    "DecomposeConcatenate": lambda gm: any(n.op == "call_function" and op_name(n.target) == "aten.cat.default"
                                           and len(n.args[0]) > 5 for n in gm.graph.nodes),
    # rewrites any OpOverload that is a view (op.is_view) into its *_copy variant
    "ReplaceBrokenOpsWithFunctionalOpsPass": lambda gm: _any_call(
        gm, lambda n: isinstance(n.target, torch._ops.OpOverload) and n.target.is_view),
    # wraps a SymInt/SymFloat/SymBool given for a tensor argument in scalar_tensor: a graph with no symbolic value
    # anywhere has none to give
    "SymToTensorPass": lambda gm: any(isinstance(n.meta.get("val"), (torch.SymInt, torch.SymFloat, torch.SymBool))
                                      for n in gm.graph.nodes),
    "RemoveMixedTypeOperators": lambda gm: _any_call(gm, _mixed_types),
    "ConvertToLinearPass": lambda gm: _converts_to_linear(gm),
    # copies meta["custom"] from a quantize/dequantize node's parent to it: no parent has any, nothing to copy
    "PropagateCustomMetaPass": lambda gm: _any_call(gm, _inherits_custom_meta),
    # folds a call whose inputs are all constants (its call_operator's is_const: literals, and get_attr tensors,
    # which make no pass idle anyway: is_idle); a placeholder or another call's output is a traced value, never
    # constant, unless that call was folded first
    "ConstPropPass": lambda gm: _any_call(gm, lambda n: all(a.op == "get_attr" for a in n.all_input_nodes)),
}
# RemoveMixedTypeOperators' allow list (its call_operator): the only ops whose arguments it may cast
_PROMOTING = frozenset({"aten.add.Tensor", "aten.mul.Tensor", "aten.sub.Tensor", "aten.div.Tensor",
                        "aten.div.Tensor_mode", "aten.minimum.default"})
EDGE_PASSES = frozenset({"NormalizeTransposePass", "ReplaceBrokenOpsWithFunctionalOpsPass", "SymToTensorPass",
                         "RemoveMixedTypeOperators"})


def _any_call(gm: torch.fx.GraphModule, pred: Callable[[torch.fx.Node], bool]) -> bool:
    """Whether pred holds for a call in the graph; True also for any graph with submodules or higher-order ops
    (ExportPass re-traces those too, and these checks look at the top graph only)."""
    for n in gm.graph.nodes:
        if n.op == "call_module" or (n.op == "get_attr" and isinstance(getattr(gm, n.target, None), torch.nn.Module)):
            return True
        if n.op == "call_function" and (isinstance(n.target, torch._ops.HigherOrderOperator) or pred(n)):
            return True
    return False


def _mixed_types(n: torch.fx.Node) -> bool:
    """Whether RemoveMixedTypeOperators could cast an argument of this call: a promoting op whose operands are not
    all tensors of exactly its result's dtype (a scalar, a 0-dim tensor of another dtype, an int tensor divided:
    anything but the plain case counts)."""
    if op_name(n.target) not in _PROMOTING or len(n.args) <= 1:
        return False
    out = n.meta.get("val")
    if not isinstance(out, torch.Tensor):
        return True
    operands = [*n.args, *(v for k, v in n.kwargs.items() if k not in ("alpha", "rounding_mode"))]
    for a in operands:
        if isinstance(a, torch.fx.Node):
            v = a.meta.get("val")
            if not isinstance(v, torch.Tensor) or v.dtype != out.dtype:
                return True
        elif a is not None:
            return True  # a Python scalar operand
    return False


def _converts_to_linear(gm: torch.fx.GraphModule) -> bool:
    """Whether ConvertToLinearPass could rewrite this graph (its `call` in executorch 1.5.1): an mm or addmm (turned
    into linear by pattern), a bmm inside a linear's source partition (by source partition; attention's bmm are not),
    or a linear whose input it would bypass (a view_copy chain back to a per-tensor dequantize) or whose one user is
    a view_copy to the same shape (replace_linear_view_copy_input_output; both asked with ExecuTorch's helpers)."""
    from executorch.backends.xnnpack._passes.convert_to_linear import ConvertToLinearPass
    from torch.fx.passes.utils.source_matcher_utils import get_source_partitions

    ops = graph_ops(gm)
    if {"aten.mm.default", "aten.addmm.default"} & ops:
        return True
    # it ends with eliminate_dead_code whatever it converted: a call nothing uses would go
    if any(n.op == "call_function" and not n.users and not n.is_impure() for n in gm.graph.nodes):
        return True
    if "aten.bmm.default" in ops:
        partitions = get_source_partitions(gm.graph, ConvertToLinearPass.linear_modules)
        if any(node.target in ConvertToLinearPass.targets
               for found in partitions.values() for partition in found for node in partition.nodes):
            return True
    return _any_call(gm, _linear_rewritten)


def _inherits_custom_meta(n: torch.fx.Node) -> bool:
    """Whether PropagateCustomMetaPass would copy custom metadata onto this call (a quantize or dequantize)."""
    from executorch.backends.xnnpack.utils.quant_utils import is_dequant, is_quant

    return ((is_quant(n) or is_dequant(n)) and bool(n.args) and isinstance(n.args[0], torch.fx.Node)
            and "custom" in n.args[0].meta)


def _linear_rewritten(n: torch.fx.Node) -> bool:
    """Whether replace_linear_view_copy_input_output would rewrite around this call."""
    if op_name(n.target) != "aten.linear.default":
        return False
    from executorch.backends.transforms.addmm_mm_to_linear import get_dqlinear_input, get_shape

    source = n.args[0]
    if get_dqlinear_input(source) not in (None, source):
        return True
    users = list(n.users)
    if len(users) != 1 or users[0].op != "call_function" or op_name(users[0].target) != "aten.view_copy.default":
        return False
    weight = n.args[1].meta.get("val")
    if weight is None:
        return True  # the pass raises its own error for a weight without metadata: let it
    out = list(get_shape(source))
    out[-1] = weight.shape[0]
    return out == list(get_shape(users[0]))


def graph_ops(gm: torch.fx.GraphModule) -> set[str]:
    """The op names (e.g. "aten.linear.default") the graph calls."""
    return {op_name(n.target) for n in gm.graph.nodes if n.op == "call_function"}


def _holds_tensor_constants(gm: torch.fx.GraphModule) -> bool:
    """Whether the graph reads a tensor through get_attr: a re-trace renames, moves and drops those even when the
    pass itself rewrites nothing, so no XNNPACK pass is idle on such a graph (XNNPACK's preprocess gets weights as
    placeholders). to_edge's graphs do hold such constants, but OpReplacePass (and MemoryFormatOpsPass) re-trace after
    its skippable passes every time and place them the same way either way (the byte-for-byte tests)."""
    return any(n.op == "get_attr" and isinstance(getattr(gm, n.target, None), torch.Tensor) for n in gm.graph.nodes)


def is_idle(pass_name: str, ops: set[str], gm: torch.fx.GraphModule | None = None) -> bool:
    """True when the named pass cannot act on a graph calling exactly `ops` (gm: that graph, for CAN_ACT)."""
    if gm is not None and pass_name not in EDGE_PASSES and _holds_tensor_constants(gm):
        return False  # to_edge's graphs hold constants, but re-traces that always run follow its skipped passes
    if pass_name in REQUIRES_ALL:
        return not REQUIRES_ALL[pass_name] <= ops
    if pass_name in REQUIRES_ANY:
        return not REQUIRES_ANY[pass_name] & ops
    if pass_name in CAN_ACT and gm is not None:
        return not CAN_ACT[pass_name](gm)
    return False


SKIPPABLE = (set(REQUIRES_ALL) | set(REQUIRES_ANY) | set(CAN_ACT)) - EDGE_PASSES  # XNNPACK's own passes


@functools.lru_cache(maxsize=None)
def _skippable(pass_cls: type) -> type:
    from torch.fx.passes.infra.pass_base import PassResult

    def call(self, graph_module):
        if is_idle(pass_cls.__name__, graph_ops(graph_module), graph_module):
            return PassResult(graph_module, False)
        return pass_cls.call(self, graph_module)

    return type(pass_cls.__name__, (pass_cls,), {"call": call, "__module__": __name__})


@contextlib.contextmanager
def skip_idle_passes() -> Iterator[None]:
    """Within this block, XNNPACK's default pass list checks each trigger set before re-tracing."""
    from executorch.backends.xnnpack import _passes

    manager = _passes.XNNPACKPassManager
    original = manager.__init__

    def init(self, exported_program, passes=None):
        original(self, exported_program, passes)
        if not passes:  # the default list (a caller's own list is left as it is)
            self.passes = [_skippable(p) if p.__name__ in SKIPPABLE else p for p in self.passes]

    manager.__init__ = init
    try:
        yield
    finally:
        manager.__init__ = original


@contextlib.contextmanager
def skip_idle_edge_passes() -> Iterator[None]:
    """Within this block, to_edge's aten-to-edge passes in EDGE_PASSES check the graph before re-tracing it."""
    from executorch.exir.program import _program

    original = _program._get_aten_to_edge_passes

    from torch.fx.passes.infra.pass_manager import pass_result_wrapper

    def swap(passes: list) -> list:  # instances, or pass managers' wrappers of them (functools.wraps: __wrapped__)
        out = []
        for p in passes:
            inner = getattr(p, "__wrapped__", p)
            if type(inner).__name__ in EDGE_PASSES:
                skippable = _skippable(type(inner))()
                p = pass_result_wrapper(skippable) if inner is not p else skippable
            out.append(p)
        return out

    def get_passes(config):
        pre, post = original(config)
        return swap(pre), swap(post)

    _program._get_aten_to_edge_passes = get_passes
    try:
        yield
    finally:
        _program._get_aten_to_edge_passes = original


@contextlib.contextmanager
def skip_settled_decompositions() -> Iterator[list]:
    """Within this block, run_decompositions(table) on a program that already came out of run_decompositions and
    calls no op of `table` returns the program as it is (yields the list of tables skipped).

    ExecuTorch's XNNPACK path decomposes three times: functionalize, decompose all but the ops XNNPACK keeps, then,
    once the kept ops that XNNPACK takes are renamed out of the table's reach, decompose with the full table. When
    every kept op was taken, that last full re-trace (the slowest of the three) has nothing left to decompose:
    ExecuTorch itself skips that case on its other path ("safe to skip when none of those targets occur")."""
    from executorch.exir.graph_module import contains_any_call_fn_target_op
    from torch.export import ExportedProgram

    original = ExportedProgram.run_decompositions
    settled: weakref.WeakSet = weakref.WeakSet()  # programs that run_decompositions made: functional already
    skipped: list = []

    def run_decompositions(self, decomp_table=None, decompose_custom_triton_ops=False):
        if (self in settled and decomp_table and not decompose_custom_triton_ops
                and not contains_any_call_fn_target_op(self.graph_module, decomp_table)):
            skipped.append(decomp_table)
            return self
        out = original(self, decomp_table, decompose_custom_triton_ops)
        settled.add(out)
        return out

    ExportedProgram.run_decompositions = run_decompositions
    try:
        yield skipped
    finally:
        ExportedProgram.run_decompositions = original
