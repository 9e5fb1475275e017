"""The delegation summary counts what XNNPACK took; the gate refuses heavy math left on portable kernels."""

from __future__ import annotations

import pytest
import torch

from harness.export import delegation
from common.errors import ExportError
from harness.export.recipes import RecipeOptions, get_recipe


class Attn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)

    def forward(self, x):
        return (torch.softmax(self.q(x) @ self.k(x).transpose(-1, -2), dim=-1),)


EX = (torch.randn(1, 4, 16),)


def test_xnnpack_lowering_leaves_no_heavy_op_outside():
    edge = get_recipe("fp32").lower(Attn().eval(), EX, RecipeOptions())
    s = delegation.summarize(edge.exported_program().graph_module)
    assert s["pieces"] == 1 and s["delegated_by_op"]["aten_linear_default"] == 2
    assert delegation.heavy_ops_outside(s) == {}
    delegation.check(s, allow_partial=False)


def test_unlowered_heavy_ops_are_named_and_refused_unless_allowed():
    from executorch.exir import to_edge

    edge = to_edge(torch.export.export(Attn().eval(), EX, strict=False))
    s = delegation.summarize(edge.exported_program().graph_module)
    heavy = delegation.heavy_ops_outside(s)
    assert s["pieces"] == 0 and heavy
    assert any("softmax" in k for k in heavy) and any(k.startswith(("aten_bmm", "aten_mm", "aten_linear",
                                                                     "aten_addmm", "aten_permute")) for k in heavy)
    with pytest.raises(ExportError, match=r"left heavy ops on portable kernels .*softmax.*--allow-partial"):
        delegation.check(s, allow_partial=False)
    delegation.check(s, allow_partial=True)


def test_heavy_op_names_are_matched_by_op_not_by_substring():
    s = {"outside_by_op": {"aten_embedding_default": 3, "aten_mm_default": 1, "aten_mmx_default": 1,
                           "aten__softmax_default": 2, "aten__int_mm_default": 4}}
    assert set(delegation.heavy_ops_outside(s)) == {"aten_mm_default", "aten__softmax_default", "aten__int_mm_default"}
