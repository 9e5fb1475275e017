"""Fake evaluations memoized: the same op on inputs of the same metadata gets fresh fake outputs of the same metadata.

Every re-trace computes each node's output metadata by running the op on fake tensors. torchao's
quantize/dequantize/choose_qparams and aten.linear are Python decompositions (1-2 ms each, 1,800 of them per trace),
and a delegate's fake evaluation runs its whole lowered graph again, yet their output shape, stride and dtype depend
only on their inputs' metadata and arguments. Within one lowering those results are memoized by exactly that.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

# ops whose fake evaluation is memoized: functional (fresh outputs, no aliasing), metadata set by inputs' metadata
MEMO_OPS = frozenset({"torchao.choose_qparams_affine.default", "torchao.quantize_affine.default",
                      "torchao.dequantize_affine.default", "aten.linear.default",
                      # a delegate's fake evaluation runs the whole lowered graph again
                      "executorch_call_delegate"})
# of those, ops whose outputs' metadata never depends on input values, even for real (constant) tensor inputs: a
# delegate runs a fixed graph (its fake evaluation gets real weights as inputs; outputs with data-dependent shapes
# are symbolic, and those are never memoized)
VALUE_BLIND_OPS = frozenset({"executorch_call_delegate"})


def op_name(target: Any) -> str:
    """"aten.linear.default" for an aten/torchao op and for its edge-dialect twin alike."""
    return str(target) if isinstance(target, torch._ops.OpOverload) else getattr(target, "__name__", str(target))


class _NotMemoizable(Exception):
    pass


def _layout(t: torch.Tensor) -> tuple | None:
    """(shape, stride, dtype, device, storage offset, requires_grad), or None when any size is symbolic."""
    shape, stride, offset = tuple(t.shape), tuple(t.stride()), t.storage_offset()
    if not all(isinstance(d, int) for d in (*shape, *stride, offset)):
        return None
    return shape, stride, t.dtype, t.device, offset, t.requires_grad


def _meta_key(x: Any, real_by_metadata: bool = False) -> tuple:
    """What an op's fake output can depend on: tensor metadata (never values) and plain arguments. A real tensor
    makes the call unmemoizable (its values may be propagated) unless `real_by_metadata`."""
    from torch._subclasses.fake_tensor import FakeTensor

    if real_by_metadata and isinstance(x, torch.Tensor) and not isinstance(x, FakeTensor):
        return ("R", *_layout(x))
    if isinstance(x, FakeTensor):
        layout = _layout(x)
        if layout is None:
            raise _NotMemoizable  # symbolic shapes: leave to the real evaluation
        if getattr(x, "constant", None) is not None:
            raise _NotMemoizable  # a fake carrying its real value (constant propagation): outputs may carry one too
        return ("T", *layout)
    if isinstance(x, torch.Tensor):
        raise _NotMemoizable
    if isinstance(x, torch.nn.Module):  # a delegate's lowered module: the key holds it, so it is this very module
        return ("M", x)
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, *(_meta_key(i, real_by_metadata) for i in x))
    if isinstance(x, dict):
        return ("dict", *((k, _meta_key(v, real_by_metadata)) for k, v in sorted(x.items())))
    if x is None or isinstance(x, (bool, int, float, str, torch.dtype, torch.device)):
        return (type(x).__name__, x)
    raise _NotMemoizable


def _spec(t: Any, inputs: list) -> tuple | None:
    """How to remake output t (its `_layout`), or None when a fresh tensor would not be the same thing (symbolic,
    a view of an input, an offset into storage, a carried constant)."""
    from torch._subclasses.fake_tensor import FakeTensor
    from torch.multiprocessing.reductions import StorageWeakRef

    if not isinstance(t, FakeTensor) or getattr(t, "constant", None) is not None:
        return None
    layout = _layout(t)
    if layout is None or layout[4] != 0:
        return None
    storage = StorageWeakRef(t.untyped_storage())
    if any(StorageWeakRef(i.untyped_storage()) == storage for i in inputs):
        return None
    return layout


@dataclass
class Memo:
    """Fake outputs by (op, input metadata); hits and misses say how much re-evaluation was saved."""

    entries: dict = field(default_factory=dict)
    misses: int = 0
    hits_by_op: Counter = field(default_factory=Counter)

    @property
    def hits(self) -> int:
        return sum(self.hits_by_op.values())


def _memoized_call(memo: Memo, name: str, call, args, kwargs):
    """call() the op, or, when an op of this name already ran on inputs of the same metadata, make fresh fake
    tensors shaped like its outputs. Only for fake inputs and outside proxy tracing (where an op would be recorded)."""
    from torch._subclasses.fake_tensor import FakeTensor
    from torch.utils import _pytree as pytree

    fakes = [a for a in pytree.tree_leaves((args, kwargs)) if isinstance(a, FakeTensor)]
    if not fakes or torch._C._get_dispatch_mode(torch._C._TorchDispatchModeKey.PROXY) is not None:
        return call()
    try:
        by_metadata = name in VALUE_BLIND_OPS
        key = (name, torch.is_grad_enabled(), _meta_key(args, by_metadata), _meta_key(kwargs, by_metadata))
    except _NotMemoizable:
        return call()
    hit = memo.entries.get(key)
    if hit is not None:
        memo.hits_by_op[name] += 1
        many, specs = hit
        with fakes[0].fake_mode:  # this pass's fake mode (each pass has its own; metadata does not depend on it)
            made = [torch.empty_strided(shape, stride, dtype=dtype, device=device, requires_grad=grad)
                    for shape, stride, dtype, device, _, grad in specs]
        return many(made) if many else made[0]
    out = call()
    memo.misses += 1
    many = type(out) if type(out) in (tuple, list) else None
    specs = [_spec(t, fakes) for t in (out if many else (out,))]
    if all(s is not None for s in specs):
        memo.entries[key] = (many, specs)
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
