"""The model lowers to XNNPACK as a whole: no matmul, linear or softmax left on portable kernels."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.backends.xnnpack.utils.configs import get_transform_passes, get_xnnpack_edge_compile_config
from executorch.exir import to_edge_transform_and_lower

from harness.export.delegation import heavy_ops_outside, summarize
from harness.export.fast_lowering import faster_lowering
from model.config import get_preset
from model.mobilebert import HEADS

# Left outside by design: the embedding lookups, the positions, the mask cast, the delegates' outputs.
GLUE = {"aten_embedding_default", "aten_arange_start_step", "aten_unsqueeze_copy_default",
        "dim_order_ops__to_dim_order_copy_default", "getitem"}


CASES = {
    # the student as benchmarked: transformers' own model lowers in 2 pieces; ours in 1
    "student-classifier": ("test-tiny", "sequence_classification", 1),
    # the teacher with both pre-training heads: LayerNorm, GELU and the vocabulary matmul
    "teacher-pretraining": ("test-tiny-teacher", "pretraining", 3),
}
# one worker lowers each case once for all three tests (make test runs pytest-xdist with --dist loadgroup)
pytestmark = pytest.mark.xdist_group("mobilebert_lowering")


@pytest.fixture(scope="module", params=list(CASES))
def lowered(request):
    preset, head, max_pieces = CASES[request.param]
    torch.manual_seed(0)
    model = HEADS[head](get_preset(preset)).eval()
    ids = torch.randint(0, 128, (1, 16))
    mask = torch.ones_like(ids)
    mask[0, 12:] = 0
    example = (ids, mask, torch.zeros_like(ids))
    ep = torch.export.export(model, example)  # the model itself, its dataclass output included
    with faster_lowering():  # ExecuTorch's lowering, byte for byte (tests/harness/export/test_fast_lowering.py)
        edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()],
                                           compile_config=get_xnnpack_edge_compile_config(),
                                           transform_passes=get_transform_passes())
    return model, example, edge, max_pieces


def test_only_glue_outside_xnnpack(lowered):
    _, _, edge, max_pieces = lowered
    summary = summarize(edge.exported_program().graph_module)
    assert heavy_ops_outside(summary) == {}, summary
    assert set(summary["outside_by_op"]) <= GLUE, summary["outside_by_op"]
    assert summary["pieces"] <= max_pieces, summary
    assert summary["delegated_by_op"]["aten_linear_default"] > 0


def test_no_sdpa_or_inplace_in_exported_graph(lowered):
    model, example, _, _ = lowered
    graph = torch.export.export(model, example).graph
    targets = {str(n.target) for n in graph.nodes if n.op == "call_function"}
    assert not any("scaled_dot_product" in t for t in targets), targets
    assert not any(t.split(".")[-2].endswith("_") for t in targets if t.startswith("aten.")), targets


def test_lowered_program_matches_eager(lowered):
    model, example, edge, _ = lowered
    from program.pte import load_forward

    program = edge.to_executorch()
    method = load_forward(program.buffer)
    got = method.execute(list(example))
    with torch.no_grad():
        out = model(*example)
    want = [t for t in dataclasses.astuple(out) if t is not None]  # the output dataclass, flattened
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert torch.allclose(g, w, atol=1e-4), (g - w).abs().max()
