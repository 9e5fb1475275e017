"""Faster XNNPACK lowering that changes no byte of the program: `faster_lowering()` around to_edge_transform_and_lower.

Lowering the full int8 MobileBERT took ~220 s here, almost all of it ExecuTorch re-tracing the ~5,900-node graph under
fake tensors, once per pass (about 30 times). Two kinds of that work are pure waste, and this module removes them:

1. Idle passes. XnnpackBackend.preprocess runs 17 passes, and each re-traces the whole graph even when it has
   nothing to do (about 6 s each on int8 MobileBERT). Seven act only on ops an encoder never has (batch norm,
   convolution, PReLU, bilinear upsampling, padding) or on the masked-SDPA pattern. Each is wrapped so that, when it
   would run, it checks the graph and hands it back untouched if the ops it needs are absent.
2. Repeated fake evaluation. Every re-trace computes each node's output metadata by running the op on fake tensors.
   torchao's quantize/dequantize/choose_qparams and aten.linear are Python decompositions (1-2 ms each, 1,800 of them
   per trace), yet their output shape, stride and dtype depend only on their inputs' metadata and arguments. Within
   one lowering those results are memoized by exactly that, and a hit makes fresh fake tensors of the same metadata.

Together: full int8 MobileBERT lowering + serialization 217 s -> 163 s on this machine, the same sha256
(tests/test_fast_lowering.py compares programs with and without, for fp32, int8 and int8-static; export time per
recipe is in benchmarks/results/quant_table.md).
The trigger sets come from each pass's source in executorch 1.5.1 (pinned); the pattern passes' sets are checked
against the patterns themselves in the tests, so a version whose patterns change fails there, not silently.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

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
}

# ops whose fake evaluation is memoized: functional (fresh outputs, no aliasing), metadata set by inputs' metadata
MEMO_OPS = frozenset({"torchao.choose_qparams_affine.default", "torchao.quantize_affine.default",
                      "torchao.dequantize_affine.default", "aten.linear.default"})


def op_name(target: Any) -> str:
    """"aten.linear.default" for an aten/torchao op and for its edge-dialect twin alike."""
    return str(target) if isinstance(target, torch._ops.OpOverload) else getattr(target, "__name__", str(target))


def graph_ops(gm: torch.fx.GraphModule) -> set[str]:
    """The op names (e.g. "aten.linear.default") the graph calls."""
    return {op_name(n.target) for n in gm.graph.nodes if n.op == "call_function"}


def is_idle(pass_name: str, ops: set[str]) -> bool:
    """True when the named pass cannot act on a graph calling exactly `ops`."""
    if pass_name in REQUIRES_ALL:
        return not REQUIRES_ALL[pass_name] <= ops
    if pass_name in REQUIRES_ANY:
        return not REQUIRES_ANY[pass_name] & ops
    return False


@functools.lru_cache(maxsize=None)
def _skippable(pass_cls: type) -> type:
    from torch.fx.passes.infra.pass_base import PassResult

    def call(self, graph_module):
        if is_idle(pass_cls.__name__, graph_ops(graph_module)):
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
            self.passes = [_skippable(p) if p.__name__ in REQUIRES_ALL or p.__name__ in REQUIRES_ANY else p
                           for p in self.passes]

    manager.__init__ = init
    try:
        yield
    finally:
        manager.__init__ = original


class _NotMemoizable(Exception):
    pass


def _meta_key(x: Any) -> tuple:
    """What an op's fake output can depend on: tensor metadata (never values) and plain arguments."""
    from torch._subclasses.fake_tensor import FakeTensor

    if isinstance(x, FakeTensor):
        if not all(isinstance(d, int) for d in (*x.shape, *x.stride(), x.storage_offset())):
            raise _NotMemoizable  # symbolic shapes: leave to the real evaluation
        if getattr(x, "constant", None) is not None:
            raise _NotMemoizable  # a fake carrying its real value (constant propagation): outputs may carry one too
        return ("T", tuple(x.shape), tuple(x.stride()), x.dtype, str(x.device), x.storage_offset(),
                x.requires_grad, id(x.fake_mode))
    if isinstance(x, torch.Tensor):
        raise _NotMemoizable
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, *(_meta_key(i) for i in x))
    if isinstance(x, dict):
        return ("dict", *((k, _meta_key(v)) for k, v in sorted(x.items())))
    if x is None or isinstance(x, (bool, int, float, str, torch.dtype, torch.device)):
        return (type(x).__name__, x)
    raise _NotMemoizable


def _spec(t: Any, inputs: list) -> tuple | None:
    """How to remake output t, or None when a fresh tensor would not be the same thing (a view of an input, an
    offset into storage, a carried constant)."""
    from torch._subclasses.fake_tensor import FakeTensor
    from torch.multiprocessing.reductions import StorageWeakRef

    if not isinstance(t, FakeTensor) or getattr(t, "constant", None) is not None or t.storage_offset() != 0:
        return None
    storage = StorageWeakRef(t.untyped_storage())
    if any(StorageWeakRef(i.untyped_storage()) == storage for i in inputs):
        return None
    return tuple(t.shape), tuple(t.stride()), t.dtype, t.device, t.requires_grad


@dataclass
class Memo:
    """Fake outputs by (op, input metadata); hits and misses say how much re-evaluation was saved."""

    entries: dict = field(default_factory=dict)
    hits: int = 0
    misses: int = 0


def _memoized_call(memo: Memo, name: str, call, args, kwargs):
    """call() the op, or, when an op of this name already ran on inputs of the same metadata, make fresh fake
    tensors shaped like its outputs. Only for fake inputs and outside proxy tracing (where an op would be recorded)."""
    from torch._subclasses.fake_tensor import FakeTensor
    from torch.utils import _pytree as pytree

    fakes = [a for a in pytree.tree_leaves((args, kwargs)) if isinstance(a, FakeTensor)]
    if not fakes or torch._C._get_dispatch_mode(torch._C._TorchDispatchModeKey.PROXY) is not None:
        return call()
    try:
        key = (name, torch.is_grad_enabled(), _meta_key(args), _meta_key(kwargs))
    except _NotMemoizable:
        return call()
    hit = memo.entries.get(key)
    if hit is not None:
        memo.hits += 1
        mode, many, specs = hit
        with mode:
            made = [torch.empty_strided(shape, stride, dtype=dtype, device=device, requires_grad=grad)
                    for shape, stride, dtype, device, grad in specs]
        return tuple(made) if many else made[0]
    out = call()
    memo.misses += 1
    many = isinstance(out, tuple)
    specs = [_spec(t, fakes) for t in (out if many else (out,))]
    if all(s is not None for s in specs):
        memo.entries[key] = (fakes[0].fake_mode, many, specs)
    return out


class _MemoInterpreter:
    """Stands in for a pass's interpreter during one call_function: answers from the memo when it can."""

    def __init__(self, inner, memo: Memo):
        self._inner, self._memo = inner, memo

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def call_function(self, target, args, kwargs):
        return _memoized_call(self._memo, op_name(target),
                              lambda: self._inner.call_function(target, args, kwargs), args, kwargs)


@contextlib.contextmanager
def memoize_fake_ops() -> Iterator[Memo]:
    """Within this block, the fake outputs of MEMO_OPS are reused for inputs of the same metadata, in the two places
    lowering evaluates them again and again: ExecuTorch's and torch's pass bases (`_fx` evaluates a node's data,
    then records the node itself: only the data is reused), and run_decompositions, which keeps these ops whole and
    computes their fake outputs by running their Python decomposition (`_get_decomp_for_cia`)."""
    from executorch.exir import pass_base
    from torch._export import pass_base as torch_pass_base
    from torch.export import exported_program

    classes = (pass_base._ExportPassBase, torch_pass_base._ExportPassBaseDeprecatedDoNotUse)
    originals = {cls: cls.__dict__["_fx"] for cls in classes}
    memo = Memo()

    def wrap(original):
        def _fx(self, kind, target, args, kwargs, meta):
            if kind != "call_function" or op_name(target) not in MEMO_OPS:
                return original(self, kind, target, args, kwargs, meta)
            inner = self.interpreter
            self.interpreter = _MemoInterpreter(inner, memo)
            try:
                return original(self, kind, target, args, kwargs, meta)
            finally:
                self.interpreter = inner

        return _fx

    get_cia = exported_program._get_decomp_for_cia

    def memo_cia(op):
        orig = get_cia(op)
        if op_name(op) not in MEMO_OPS:
            return orig
        return lambda *args, **kwargs: _memoized_call(memo, op_name(op), lambda: orig(*args, **kwargs), args, kwargs)

    for cls, original in originals.items():
        cls._fx = wrap(original)
    exported_program._get_decomp_for_cia = memo_cia
    try:
        yield memo
    finally:
        for cls, original in originals.items():
            cls._fx = original
        exported_program._get_decomp_for_cia = get_cia
        memo.entries.clear()


@contextlib.contextmanager
def faster_lowering() -> Iterator[None]:
    """Both speed-ups; the program written is byte-identical to ExecuTorch's own lowering."""
    with skip_idle_passes(), memoize_fake_ops():
        yield
