"""faster_lowering (idle XNNPACK passes skipped, fake evaluations memoized) changes no byte of the program."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
import torch

from harness.export import fast_lowering
from harness.export.exporter import ProgramModule, example_inputs
from harness.export.recipes import RecipeOptions, get_recipe, serialize
from model.config import get_preset
from model.mobilebert import MobileBertForSequenceClassification

# one worker lowers the tiny int8 model once (`int8_fast`) for every test that looks at it (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("fast_lowering")


def tiny_model() -> ProgramModule:
    torch.manual_seed(0)
    cfg = get_preset("test-tiny", num_hidden_layers=1)
    return ProgramModule(MobileBertForSequenceClassification(cfg), "sequence_classification").eval()


def program_sha(recipe: str, model: torch.nn.Module, inputs: tuple, opts: RecipeOptions) -> str:
    edge = get_recipe(recipe).lower(model, inputs, opts)
    return hashlib.sha256(serialize(edge).buffer).hexdigest()  # as harness.export.exporter writes it


def lower_fast(monkeypatch, recipe, model, inputs, opts) -> tuple[str, list[tuple[str, bool]], list]:
    """(sha with faster_lowering, which passes were asked and were idle, what each faster_lowering block saved: the
    lowering's first, then serialization's, each with `memo_ops`, the ops its memo held before the block let go)."""
    asked, saved = [], []
    real, block = fast_lowering.skips.is_idle, fast_lowering.faster_lowering

    def spy(name, ops, gm=None):
        asked.append((name, real(name, ops, gm)))
        return asked[-1][1]

    @contextlib.contextmanager
    def counted():
        with block() as savings:
            saved.append(savings)
            yield savings
            savings.memo_ops = {key[0] for key in savings.memo.entries}

    monkeypatch.setattr(fast_lowering.skips, "is_idle", spy)
    monkeypatch.setattr(fast_lowering, "faster_lowering", counted)
    return program_sha(recipe, model, inputs, opts), asked, saved


def lower_plain(monkeypatch, recipe, model, inputs, opts) -> str:
    """The sha with ExecuTorch's lowering as it is."""
    monkeypatch.setattr(fast_lowering, "faster_lowering", contextlib.nullcontext)
    return program_sha(recipe, model, inputs, opts)


def lower_both_ways(monkeypatch, recipe, model, inputs, opts) -> tuple[str, str, list[tuple[str, bool]]]:
    """(sha with faster_lowering, sha with ExecuTorch's lowering as it is, which passes were asked and were idle)."""
    fast, asked, _ = lower_fast(monkeypatch, recipe, model, inputs, opts)
    return fast, lower_plain(monkeypatch, recipe, model, inputs, opts), asked


def tiny_inputs(model) -> tuple[tuple, RecipeOptions]:
    vocab = model.model.config.vocab_size
    return example_inputs(16, vocab), RecipeOptions(calibration=[example_inputs(16, vocab, seed=s) for s in range(2)])


@pytest.fixture(scope="module")
def int8_fast():
    """The tiny model's int8 lowering with faster_lowering, once for every test that looks at what it did."""
    model = tiny_model()
    with pytest.MonkeyPatch.context() as mp:
        sha, asked, saved = lower_fast(mp, "int8", model, *tiny_inputs(model))
    return {"model": model, "sha": sha, "asked": asked, "lowering": saved[0], "serializing": saved[1]}


@pytest.mark.parametrize("recipe", ["fp32", "int8", "int8-static"])
def test_faster_lowering_changes_no_byte(monkeypatch, recipe, request):
    if recipe == "int8":
        done = request.getfixturevalue("int8_fast")
        model, fast, asked = done["model"], done["sha"], done["asked"]
        plain = lower_plain(monkeypatch, recipe, model, *tiny_inputs(model))
    else:
        model = tiny_model()
        fast, plain, asked = lower_both_ways(monkeypatch, recipe, model, *tiny_inputs(model))
    assert fast == plain
    idle = {name for name, was_idle in asked if was_idle}
    # a transformer encoder has no batch norm, convolution, PReLU or upsampling: those re-traces are saved
    assert {"FuseBatchNormPass", "DecomposeBatchNorm", "Conv1dUnsqueezePass", "PReLUReshapePass",
            "ConvertToUpsampleBilinear2d", "DimOrderOpsRevertPass", "RemoveGetItemPass", "RemoveRedundantCopyPass",
            "DecomposeConcatenate", "ConvertToLinearPass", "ConstPropPass", "PropagateCustomMetaPass"} <= idle
    assert "InsertPadQDQPass" not in idle  # the trigram embedding pads: that pass must run, and does
    # nor aten.t, view ops after the view-copy pass, symbolic scalars or mixed-dtype arithmetic: to_edge's re-traces
    # for those are saved too
    assert fast_lowering.skips.EDGE_PASSES <= idle


def test_fake_evaluations_are_reused_across_layers_and_passes(int8_fast):
    memo, ops = int8_fast["lowering"].memo, int8_fast["lowering"].memo_ops
    assert {"torchao.choose_qparams_affine.default", "torchao.dequantize_affine.default",
            "aten.linear.default"} <= ops
    # a handful of distinct (op, input metadata) keys stand for the many calls the passes make (fewer repeats
    # since the graph rewrites fused a block's same-shaped linears: >10x before them, >5x after)
    assert memo.hits > 5 * memo.misses > 0


def test_trigger_ops_are_real_edge_ops():
    """A misspelled trigger would make a pass look idle forever: every name must resolve to an edge-dialect op."""
    from executorch.exir.dialects._ops import ops as exir_ops

    names = set().union(*fast_lowering.REQUIRES_ALL.values(), *fast_lowering.REQUIRES_ANY.values())
    for name in names:
        ns, op, overload = name.split(".")
        target = getattr(getattr(getattr(exir_ops.edge, ns), op), overload)
        assert fast_lowering.op_name(target) == name


class ConvNet(torch.nn.Module):
    """Has what the skippable passes act on, so they must run (and do what they do unwrapped)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 8, 3)
        self.bn = torch.nn.BatchNorm1d(8)

    def forward(self, x):
        return (torch.relu(self.bn(self.conv(x))),)


class Upsample(torch.nn.Module):
    def forward(self, x):
        return (torch.nn.functional.interpolate(x, size=(6, 8), mode="bilinear"),)


class CatOf6(torch.nn.Module):
    def forward(self, x):
        return (torch.cat([x * k for k in range(1, 7)], dim=1),)


class ChannelsLast(torch.nn.Module):
    def forward(self, x):
        return ((x + 1).to(memory_format=torch.channels_last) * 2,)


@pytest.mark.parametrize("make, shape, must_run", [
    (ConvNet, (1, 4, 10), {"Conv1dUnsqueezePass", "FuseBatchNormPass"}),
    (Upsample, (1, 3, 4, 4), {"ConvertToUpsampleBilinear2d"}),
    (CatOf6, (1, 2, 3), {"DecomposeConcatenate"}),
    (ChannelsLast, (1, 3, 4, 4), {"DimOrderOpsRevertPass", "RemoveRedundantCopyPass"}),
])
def test_passes_run_when_their_ops_are_there(monkeypatch, make, shape, must_run):
    torch.manual_seed(0)
    model = make().eval()
    if make is ConvNet:
        with torch.no_grad():
            model.bn.running_mean.uniform_(-1, 1)
            model.bn.running_var.uniform_(0.5, 2)
    fast, plain, asked = lower_both_ways(monkeypatch, "fp32", model, (torch.randn(*shape),), RecipeOptions())
    assert fast == plain
    assert must_run <= {name for name, was_idle in asked if not was_idle}


def edge_program(model: torch.nn.Module, shape: tuple, config=None):
    """`to_edge` of the model exported on one random input of this shape: an edge graph no XNNPACK lowering made."""
    from executorch.exir import to_edge

    return to_edge(torch.export.export(model, (torch.randn(*shape),)), compile_config=config).exported_program()


def test_the_getitem_pass_acts_where_its_trigger_ops_are():
    """XNNPACK keeps max_pool2d whole, so no lowering here reaches RemoveGetItemPass with its ops; on an edge graph
    that has them, the wrapped pass is not idle and rewrites the graph as the pass itself does."""
    from executorch.backends.transforms.remove_getitem_op import RemoveGetItemPass

    class Pools(torch.nn.Module):
        def forward(self, x):
            return (torch.ops.aten.max_pool2d_with_indices.default(x, [2, 2])[0] + 1, torch.max(x, dim=1)[0])

    def edge_graph():
        return edge_program(Pools(), (1, 3, 4, 4)).graph_module

    gm = edge_graph()
    assert not fast_lowering.is_idle("RemoveGetItemPass", fast_lowering.graph_ops(gm), gm)
    wrapped = fast_lowering.skips._skippable(RemoveGetItemPass)()(edge_graph())
    plain = RemoveGetItemPass()(edge_graph())
    assert wrapped.modified and wrapped.graph_module.code == plain.graph_module.code != gm.code


class MatmulByTransposed(torch.nn.Module):
    """An addmm and an mm on a transposed weight, which ConvertToLinearPass makes linear."""

    def __init__(self):
        super().__init__()
        self.w, self.b = torch.nn.Parameter(torch.randn(6, 5)), torch.nn.Parameter(torch.randn(6))

    def forward(self, x):
        return (torch.addmm(self.b, x, self.w.t()) + x @ self.w.t(),)


class AttentionScores(torch.nn.Module):
    """A bmm that is no linear (attention's kind): ConvertToLinearPass leaves it."""

    def forward(self, x):
        return (torch.bmm(x, x.transpose(1, 2)).softmax(-1),)


class LinearThenView(torch.nn.Module):
    """A linear whose one user views it to its own shape (the pass drops that view) or to another (kept)."""

    def __init__(self, shape):
        super().__init__()
        self.linear, self.shape = torch.nn.Linear(5, 6), shape

    def forward(self, x):
        return (self.linear(x).view(*self.shape) + 1,)


@pytest.mark.parametrize("make, shape, keep_linear, dead, expected", [
    (MatmulByTransposed, (3, 5), False, False, False),
    (AttentionScores, (2, 3, 4), False, False, True),
    (lambda: LinearThenView((2, 3, 6)), (2, 3, 5), True, False, False),
    (lambda: LinearThenView((2, 18)), (2, 3, 5), True, False, True),
    (lambda: LinearThenView((2, 18)), (2, 3, 5), True, True, False),  # its closing dead-code pass would act
])
def test_convert_to_linear_is_idle_exactly_where_it_changes_nothing(make, shape, keep_linear, dead, expected):
    """The pass's condition is read from its `call`: on edge graphs with and without what it rewrites, it is idle
    exactly when the pass itself hands back the same graph (XNNPACK keeps aten.linear whole: so does keep_linear)."""
    from executorch.backends.xnnpack._passes.convert_to_linear import ConvertToLinearPass
    from executorch.exir import EdgeCompileConfig

    linear = [torch.ops.aten.linear.default]
    config = (EdgeCompileConfig(_check_ir_validity=False, _core_aten_ops_exception_list=linear, preserve_ops=linear)
              if keep_linear else None)

    def edge_graph():
        torch.manual_seed(0)
        gm = edge_program(make().eval(), shape, config).graph_module
        if dead:  # a call nothing uses, as a pass may leave behind
            x = next(n for n in gm.graph.nodes if n.op == "placeholder" and n.name.startswith("x"))
            with gm.graph.inserting_after(x):
                gm.graph.call_function(torch.ops.aten.abs.default, (x,)).meta["val"] = x.meta["val"]
            gm.recompile()
        return gm

    gm = edge_graph()
    idle = fast_lowering.is_idle("ConvertToLinearPass", fast_lowering.graph_ops(gm), gm)
    changed = ConvertToLinearPass()(edge_graph()).graph_module.code != gm.code
    assert idle is expected and idle is not changed
    assert fast_lowering.skips._skippable(ConvertToLinearPass)()(edge_graph()).graph_module.code == (
        gm.code if idle else ConvertToLinearPass()(edge_graph()).graph_module.code)


class PlusRange(torch.nn.Module):
    """A call with constant inputs only (arange): ConstPropPass folds it."""

    def forward(self, x):
        return (x + torch.arange(3).float(),)


class ReluTimesTwo(torch.nn.Module):
    def forward(self, x):
        return (torch.relu(x) * 2,)


@pytest.mark.parametrize("make, idle", [(PlusRange, False), (ReluTimesTwo, True)])
def test_const_prop_is_idle_exactly_where_it_folds_nothing(make, idle):
    from executorch.exir.passes.const_prop_pass import ConstPropPass

    def edge_graph():
        return edge_program(make(), (2, 3)).graph_module

    gm = edge_graph()
    assert fast_lowering.is_idle("ConstPropPass", fast_lowering.graph_ops(gm), gm) is idle
    assert (ConstPropPass()(edge_graph()).graph_module.code == gm.code) is idle


def test_no_pass_is_idle_on_a_graph_that_reads_a_tensor_constant():
    """A re-trace renames, moves and drops get_attr constants even when the pass rewrites nothing (to_edge's passes
    are left out: re-traces that always run follow them, and the byte-for-byte tests above cover them)."""
    gm = edge_program(ReluTimesTwo(), (2, 3)).graph_module
    assert fast_lowering.is_idle("ConstPropPass", fast_lowering.graph_ops(gm), gm)
    gm.register_buffer("scale", torch.ones(3))
    out = next(n for n in gm.graph.nodes if n.op == "output")
    with gm.graph.inserting_before(out):
        scale = gm.graph.get_attr("scale")
        scaled = gm.graph.call_function(torch.ops.aten.mul.Tensor, (out.args[0][0], scale))
    out.args = ((scaled,),)
    gm.recompile()
    for name in fast_lowering.SKIPPABLE:
        assert not fast_lowering.is_idle(name, fast_lowering.graph_ops(gm), gm), name


def test_custom_meta_propagation_is_idle_until_a_quantized_value_carries_custom_meta():
    from executorch.backends.xnnpack.utils.quant_utils import is_quant

    class QuantDequant(torch.nn.Module):
        def forward(self, x):
            q = torch.ops.quantized_decomposed.quantize_per_tensor(torch.relu(x), 0.1, 0, -128, 127, torch.int8)
            return (torch.ops.quantized_decomposed.dequantize_per_tensor(q, 0.1, 0, -128, 127, torch.int8),)

    from executorch.backends.xnnpack._passes.propagate_custom_meta_pass import PropagateCustomMetaPass

    ep = edge_program(QuantDequant(), (2, 3))
    gm = ep.graph_module
    assert fast_lowering.is_idle("PropagateCustomMetaPass", fast_lowering.graph_ops(gm), gm)
    out = PropagateCustomMetaPass(ep)(gm).graph_module
    assert not [n for n in out.graph.nodes if "custom" in n.meta]  # idle indeed: nothing to copy
    ep = edge_program(QuantDequant(), (2, 3))
    gm = ep.graph_module
    next(n for n in gm.graph.nodes if is_quant(n)).args[0].meta["custom"] = {"tag": 1}  # what the pass copies
    assert not fast_lowering.is_idle("PropagateCustomMetaPass", fast_lowering.graph_ops(gm), gm)
    out = PropagateCustomMetaPass(ep)(gm).graph_module
    assert [n.meta.get("custom") for n in out.graph.nodes if is_quant(n)] == [{"tag": 1}]  # and the pass copies it


@pytest.mark.parametrize("pass_name, module, getter", [
    ("ConvertToSDPAPass", "executorch.backends.xnnpack.partition.graphs.sdpa", "get_graphs"),
    ("ConvertToUpsampleBilinear2d", "executorch.backends.xnnpack.partition.graphs.bilinear_2d", "get_graphs_dict"),
])
def test_pattern_passes_need_every_op_of_their_trigger_set(pass_name, module, getter):
    """A pattern can only match a graph that has all of its ops: each pattern must contain the whole trigger set."""
    import importlib

    patterns = list(getattr(importlib.import_module(module), getter)())
    assert patterns
    for pattern in patterns:
        assert fast_lowering.REQUIRES_ALL[pass_name] <= fast_lowering.graph_ops(pattern)


def test_every_skippable_pass_is_in_xnnpacks_default_list():
    from executorch.backends.xnnpack._passes import XNNPACKPassManager

    names = {p.__name__ for p in XNNPACKPassManager(None).passes}
    assert fast_lowering.SKIPPABLE == (set(fast_lowering.REQUIRES_ALL) | set(fast_lowering.REQUIRES_ANY) | set(
        fast_lowering.CAN_ACT)) - fast_lowering.skips.EDGE_PASSES
    assert fast_lowering.SKIPPABLE <= names


def test_every_skippable_edge_pass_is_in_to_edges_list():
    from executorch.exir import EdgeCompileConfig
    from executorch.exir.program._program import _get_aten_to_edge_passes

    pre, post = _get_aten_to_edge_passes(EdgeCompileConfig())
    assert fast_lowering.skips.EDGE_PASSES <= {type(getattr(p, "__wrapped__", p)).__name__ for p in (*pre, *post)}


class Mixed(torch.nn.Module):
    """Multiplies floats by an int64 range and adds an int32 mask: RemoveMixedTypeOperators must cast, and does."""

    def forward(self, x):
        return (x * torch.arange(x.shape[-1]) + (x > 0).to(torch.int32),)


def test_remove_mixed_types_runs_on_mixed_dtypes(monkeypatch):
    fast, plain, asked = lower_both_ways(monkeypatch, "fp32", Mixed().eval(), (torch.randn(2, 4),), RecipeOptions())
    assert fast == plain
    assert "RemoveMixedTypeOperators" in {name for name, was_idle in asked if not was_idle}


def _graph(*calls) -> torch.fx.GraphModule:
    """A graph x -> calls in a chain, each node's meta val a fake of the real result (as export leaves them)."""
    g = torch.fx.Graph()
    x = g.placeholder("x")
    x.meta["val"] = torch.randn(2, 3)
    last = x
    for op, extra in calls:
        last_val = last.meta["val"]
        node = g.call_function(op, (last, *extra))
        node.meta["val"] = op(last_val, *extra)
        last = node
    g.output((last,))
    return torch.fx.GraphModule(torch.nn.Module(), g)


@pytest.mark.parametrize("pass_name, calls, idle", [
    ("NormalizeTransposePass", [(torch.ops.aten.t.default, ())], False),
    ("NormalizeTransposePass", [(torch.ops.aten.t_copy.default, ())], True),
    ("ReplaceBrokenOpsWithFunctionalOpsPass", [(torch.ops.aten.expand.default, ([2, 3],))], False),
    ("ReplaceBrokenOpsWithFunctionalOpsPass", [(torch.ops.aten.expand_copy.default, ([2, 3],))], True),
    ("RemoveMixedTypeOperators", [(torch.ops.aten.mul.Tensor, (2.0,))], False),  # a Python scalar operand
    ("RemoveMixedTypeOperators", [(torch.ops.aten.add.Tensor, (torch.ones(2, 3, dtype=torch.float64),))], False),
    ("RemoveMixedTypeOperators", [(torch.ops.aten.relu.default, ())], True),
    ("SymToTensorPass", [(torch.ops.aten.relu.default, ())], True),
])
def test_edge_pass_conditions_follow_their_call_operator(pass_name, calls, idle):
    gm = _graph(*calls)
    assert fast_lowering.is_idle(pass_name, fast_lowering.graph_ops(gm), gm) is idle


def test_same_dtype_arithmetic_leaves_remove_mixed_types_idle_and_a_symbolic_value_wakes_sym_to_tensor():
    g = torch.fx.Graph()
    a, b = g.placeholder("a"), g.placeholder("b")
    a.meta["val"] = b.meta["val"] = torch.randn(2)
    s = g.call_function(torch.ops.aten.add.Tensor, (a, b), {"alpha": 2})
    s.meta["val"] = torch.randn(2)
    g.output((s,))
    gm = torch.fx.GraphModule(torch.nn.Module(), g)
    assert fast_lowering.is_idle("RemoveMixedTypeOperators", fast_lowering.graph_ops(gm), gm)
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    s.meta["sym"] = None
    a.meta["val"] = ShapeEnv().create_unbacked_symint()
    assert not fast_lowering.is_idle("SymToTensorPass", fast_lowering.graph_ops(gm), gm)


def test_delegate_evaluation_is_reused_when_serializing(int8_fast):
    """to_executorch's passes each evaluate the delegate on fake tensors (the whole lowered graph again): once is
    enough, and the program is the same (the sha tests above serialize inside faster_lowering)."""
    assert "executorch_call_delegate" in int8_fast["serializing"].memo_ops
    assert int8_fast["serializing"].memo.hits_by_op["executorch_call_delegate"] >= 1


class TwoLinears(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)

    def forward(self, x):
        return (self.b(torch.relu(self.a(x))),)


def test_settled_decompositions_skip_only_a_table_with_nothing_to_decompose():
    from executorch.exir.program._program import _default_decomposition_table

    table = _default_decomposition_table()
    exported = torch.export.export(TwoLinears().eval(), (torch.randn(2, 8),), strict=False)

    def linears(ep):
        return sum(n.target == torch.ops.aten.linear.default for n in ep.graph.nodes)

    with fast_lowering.skip_settled_decompositions() as skipped:
        functional = exported.run_decompositions({})
        assert linears(functional) == 2  # kept whole by the empty table
        decomposed = functional.run_decompositions(table)  # settled, but linear is in the table: it must run
        assert linears(decomposed) == 0 and decomposed is not functional and not skipped
        again = decomposed.run_decompositions(table)  # settled and nothing of the table left: skipped
        assert again is decomposed and len(skipped) == 1
        fresh = torch.export.export(TwoLinears().eval(), (torch.randn(2, 8),), strict=False)
        assert fresh.run_decompositions(table) is not fresh  # not from run_decompositions: never skipped
    assert len(skipped) == 1


def test_int8_lowering_skips_its_last_decomposition(int8_fast):
    """XNNPACK takes every linear, so ExecuTorch's final full-table decomposition has nothing to do."""
    assert len(int8_fast["lowering"].skipped_decompositions) == 1


def test_code_is_written_only_when_read_or_run_and_every_module_has_it_after_the_block():
    from torch.fx import symbolic_trace

    class Add(torch.nn.Module):
        def forward(self, x):
            return x + 1

    with fast_lowering.defer_codegen() as seen:
        gm = symbolic_trace(Add())
        for node in gm.graph.nodes:  # a pass edits the graph, then recompiles, as ExecuTorch's passes do
            if node.op == "call_function":
                node.args = (node.args[0], 2)
        gm.recompile()
        assert seen.asked >= 2 and seen.generated == 0  # nothing read or ran it yet
        assert gm(torch.zeros(1)).item() == 2  # run: the code of the edited graph
        assert seen.generated == 1
        gm.recompile()
        assert "2" in gm.code and seen.generated == 2  # read: written again for the latest graph
        other = symbolic_trace(Add())
    assert torch.fx.GraphModule.recompile.__name__ == "recompile" and seen.generated == 2
    assert "+ 1" in other.code and other(torch.zeros(1)).item() == 1  # left the block unread: written when read
    import pickle

    again = pickle.loads(pickle.dumps(gm))  # torch serializes a GraphModule as its code: the latest graph's
    assert again(torch.zeros(1)).item() == 2


def test_lowering_asks_for_code_far_less_often_than_it_recompiles(int8_fast):
    seen = int8_fast["lowering"].codegen
    assert seen.generated * 3 < seen.asked
