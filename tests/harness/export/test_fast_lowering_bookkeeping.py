"""fast_lowering.bookkeeping: each cache gives what torch computes without it, whatever happens in between."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.export import fast_lowering


def test_shared_provenance_is_the_same_chain():
    from torch.fx.traceback import NodeSource, NodeSourceAction

    gm = torch.fx.symbolic_trace(lambda x: torch.relu(x) + 1)
    node = next(n for n in gm.graph.nodes if n.op == "call_function")
    root = NodeSource(node, "trace", NodeSourceAction.CREATE)
    node.meta["from_node"] = [NodeSource(node, "first", [NodeSourceAction.CREATE, NodeSourceAction.REPLACE])]
    node.meta["from_node"][0].from_node = [root]
    copied = NodeSource(node, "second", NodeSourceAction.CREATE)
    with fast_lowering.share_provenance():
        shared = NodeSource(node, "second", NodeSourceAction.CREATE)
        without_node = NodeSource(None, "third")
    assert shared.to_dict() == copied.to_dict()
    assert shared.from_node[0] is node.meta["from_node"][0]  # shared, not copied
    assert shared.from_node is not node.meta["from_node"]  # the list itself is the node's own
    assert copied.from_node[0] is not node.meta["from_node"][0]  # torch's own deep copy, for contrast
    assert without_node.from_node == [] and without_node.node_info is None
    assert NodeSource(node, "after").from_node[0] is not node.meta["from_node"][0]  # torch's own again


def test_compiled_code_is_reused_under_each_fresh_file_name():
    from torch.fx import graph_module

    gm = torch.fx.symbolic_trace(lambda x: torch.relu(x) * 2)
    x = torch.randn(5)
    with fast_lowering.reuse_compiled_code() as compiled:
        gm.recompile()
        first = gm.forward.__code__.co_filename
        gm.recompile()
        second = gm.forward.__code__.co_filename
        assert (compiled.compiles, compiled.distinct) == (2, 1)  # one source, compiled once
        gm.graph.call_function(torch.neg, (next(iter(gm.graph.nodes)),))  # a different source compiles anew
        gm.recompile()
        assert (compiled.compiles, compiled.distinct) == (3, 2)
    assert first != second  # each recompile has its own name, and its source behind it (tracebacks show it)
    assert "relu" in graph_module._loader.get_source(second)
    assert torch.equal(gm(x), torch.relu(x) * 2)


SPEC_NAMES = st.sampled_from([f"p{i}" for i in range(6)])
MUTATIONS = st.lists(st.one_of(
    st.tuples(st.just("rename"), st.integers(0, 9), SPEC_NAMES),
    st.tuples(st.just("kind"), st.integers(0, 9), st.sampled_from(["PARAMETER", "BUFFER", "CONSTANT_TENSOR"])),
    st.tuples(st.just("target"), st.integers(0, 9), SPEC_NAMES),
    st.tuples(st.just("append"), SPEC_NAMES, st.sampled_from(["PARAMETER", "BUFFER"])),
    st.tuples(st.just("pop"), st.integers(0, 9)),
    st.tuples(st.just("swap_in"), st.integers(0, 9), SPEC_NAMES),
    st.tuples(st.just("reassign"),),
), max_size=12)


@settings(max_examples=60, deadline=None)
@given(MUTATIONS)
def test_signature_maps_follow_every_edit(mutations):
    from torch.export.graph_signature import ExportGraphSignature, InputKind, InputSpec, TensorArgument

    def spec(name, kind="PARAMETER"):
        return InputSpec(InputKind[kind], TensorArgument(name), target=f"w.{name}",
                         persistent=True if kind == "BUFFER" else None)

    props = {name: ExportGraphSignature.__dict__[name] for name in fast_lowering.bookkeeping.SIGNATURE_MAPS}

    def fresh(sig):  # torch's own, uncached
        return {name: dict(prop.fget(sig)) for name, prop in props.items()}

    pool = {name: spec(name, "BUFFER") for name in ("p0", "p1", "p2", "p3", "p4", "p5")}  # made before: no setattr
    with fast_lowering.cache_signature_maps() as counts:
        sig = ExportGraphSignature([spec("a"), spec("b", "BUFFER"), spec("c")], [])
        for m in mutations:
            specs = sig.input_specs
            i = m[1] % len(specs) if specs and len(m) > 1 and isinstance(m[1], int) else None
            if m[0] == "rename" and specs:
                specs[i].arg.name = m[2]
            elif m[0] == "kind" and specs:
                specs[i].kind = InputKind[m[2]]
                specs[i].persistent = True if m[2] == "BUFFER" else None
            elif m[0] == "target" and specs:
                specs[i].target = m[2]
            elif m[0] == "append":
                specs.append(spec(m[1], m[2]))
            elif m[0] == "pop" and specs:
                specs.pop(i)
            elif m[0] == "swap_in" and specs:
                specs[i] = pool[m[2]]  # an existing object into the same list: only its identity tells
            elif m[0] == "reassign":
                sig.input_specs = list(reversed(specs))
            seen = {name: dict(getattr(sig, name)) for name in props}
            assert seen == fresh(sig)
            hits = counts.hits
            assert getattr(sig, "inputs_to_parameters") is getattr(sig, "inputs_to_parameters")  # cached between edits
            assert counts.hits == hits + 2
    assert all(ExportGraphSignature.__dict__[name] is prop for name, prop in props.items())  # restored


def test_signature_map_setattr_hooks_are_removed():
    from torch.export.graph_signature import TensorArgument

    before = TensorArgument.__setattr__
    with fast_lowering.cache_signature_maps():
        assert TensorArgument.__setattr__ is not before
    assert TensorArgument.__setattr__ is before
    arg = copy.copy(TensorArgument("x"))
    arg.name = "y"
    assert arg.name == "y"


@pytest.mark.parametrize("ctx", ["share_provenance", "reuse_compiled_code", "cache_signature_maps"])
def test_each_cache_restores_torch_on_error(ctx):
    from torch.fx import graph_module
    from torch.fx.traceback import NodeSource

    before = (NodeSource.__init__, graph_module._exec_with_source)
    with pytest.raises(RuntimeError):
        with getattr(fast_lowering, ctx)():
            raise RuntimeError("boom")
    assert (NodeSource.__init__, graph_module._exec_with_source) == before
