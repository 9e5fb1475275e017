"""fp16 and int4 (+ int4 embedding tables) lower fully to XNNPACK and their programs track fp32 eager."""

from __future__ import annotations

import pytest
import torch

from harness.export import delegation
from harness.export.exporter import ProgramModule, example_inputs
from harness.export.recipes import RecipeOptions, get_recipe
from model.config import get_preset
from model.mobilebert import MobileBertForSequenceClassification


def model32() -> ProgramModule:
    """test-tiny widened so every linear input is a multiple of 32 (XNNPACK's int4 group unit)."""
    torch.manual_seed(0)
    cfg = get_preset("test-tiny", num_hidden_layers=1, embedding_size=32, hidden_size=64, intra_bottleneck_size=32,
                     intermediate_size=64)
    m = MobileBertForSequenceClassification(cfg)
    with torch.no_grad():
        m.classifier.weight.normal_(0, 1.0)  # logits well apart, so relative errors are meaningful
    return ProgramModule(m, "sequence_classification").eval()


def run(edge, x):
    import executorch.kernels.quantized  # noqa: F401
    from program.pte import load_forward

    return load_forward(edge.to_executorch().buffer).execute(list(x))[0]


@pytest.mark.parametrize("recipe, opts, tol, table_op", [
    ("fp16", RecipeOptions(), 0.02, "aten_embedding_default"),
    ("int4", RecipeOptions(group_size=32, quant_embedding="4w"), 0.25, "quantized_decomposed_embedding_4bit_dtype"),
    ("int4", RecipeOptions(group_size=0, quant_embedding="4w"), 0.25, "quantized_decomposed_embedding_4bit_dtype"),
])
def test_program_lowers_fully_and_tracks_fp32(recipe, opts, tol, table_op):
    model, x = model32(), example_inputs(8, 128, seed=5)
    edge = get_recipe(recipe).lower(model, example_inputs(8, 128), opts)
    s = delegation.summarize(edge.exported_program().graph_module)
    assert delegation.heavy_ops_outside(s) == {} and s["delegated_by_op"]["aten_linear_default"] > 0
    assert s["outside_by_op"].get(table_op) == 3
    got = run(edge, x)
    with torch.no_grad():
        ref = model(*x)[0]
    assert got.dtype == torch.float32
    rel = ((got - ref).norm() / ref.norm()).item()
    assert 0 < rel < tol


def test_int4_per_row_gives_each_output_row_one_scale_and_groups_give_it_several():
    """--group-size row (0): one int4 scale per row of every linear; --group-size 32: in_features / 32 per row."""
    for group, per_row in ((0, lambda k: 1), (32, lambda k: k // 32)):
        q = get_recipe("int4").prepare(model32(), example_inputs(8, 128), RecipeOptions(group_size=group))
        linears = [m for m in q.modules() if isinstance(m, torch.nn.Linear)]
        assert linears
        for lin in linears:
            out_f, in_f = lin.weight.shape
            assert tuple(lin.weight.block_size) == (1, in_f if group == 0 else group)
            assert lin.weight.scale.numel() == out_f * per_row(in_f), (group, lin.weight.scale.shape)
