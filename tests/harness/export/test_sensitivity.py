"""Sensitivity finds the layer int8 breaks, ranks it first, and its suggested --keep-fp32 set restores agreement."""

from __future__ import annotations

import pytest
import torch

from common.errors import BadInput
from harness.export.exporter import ProgramModule, example_inputs
from harness.export.recipes import RecipeOptions, get_recipe
from harness.export.sensitivity import module_groups, rank
from model.config import get_preset
from model.mobilebert import MobileBertForSequenceClassification


def fragile_model() -> ProgramModule:
    """test-tiny whose classifier has one huge shared weight column: per-row int8 scales then round the columns
    that separate the classes to zero, so only that layer's quantization flips predictions."""
    torch.manual_seed(0)
    model = MobileBertForSequenceClassification(get_preset("test-tiny", num_hidden_layers=3, num_labels=2))
    with torch.no_grad():
        w = model.classifier.weight
        w.normal_(0.0, 1.0)
        w[:, 0] = 300.0
    return ProgramModule(model, "sequence_classification").eval()


@pytest.fixture(scope="module")
def report():
    model = fragile_model()
    return rank(model, example_inputs(16, 128), example_inputs(16, 128, batch=64, seed=3), "int8", RecipeOptions(), 0.99)


def test_groups_are_each_block_then_the_other_linear_owners():
    groups = module_groups(fragile_model())
    assert groups[:3] == [f"model.mobilebert.layers.{i}" for i in range(3)]
    assert "model.classifier" in groups and "model.mobilebert.embeddings" in groups


def test_the_broken_layer_ranks_first_and_the_rest_are_harmless(report):
    assert report["baseline"]["top1_agreement"] < 0.99
    first, *rest = report["groups"]
    assert first["group"] == "classifier" and first["top1_agreement"] < 0.99
    assert all(r["top1_agreement"] >= 0.99 for r in rest)
    errors = [r["mean_rel_logit_error"] for r in report["groups"]]
    assert errors == sorted(errors, reverse=True)


def test_suggested_keep_set_restores_agreement_when_applied(report):
    assert report["reached"] and report["suggested_keep_fp32"] == ["classifier"]
    # the suggestion is a real --keep-fp32 value: applying it through the recipe gives the promised agreement
    model = fragile_model()
    x = example_inputs(16, 128, batch=64, seed=3)
    q = get_recipe("int8").prepare(model, example_inputs(16, 128), RecipeOptions(keep_fp32=report["suggested_keep_fp32"]))
    with torch.no_grad():
        agree = (q(*x)[0].argmax(-1) == model(*x)[0].argmax(-1)).float().mean().item()
    assert agree == pytest.approx(report["suggested_agreement"]) and agree >= 0.99


def test_a_recipe_that_quantizes_nothing_is_refused():
    with pytest.raises(BadInput, match="recipe fp16 quantizes no layer"):
        rank(fragile_model(), example_inputs(16, 128), example_inputs(16, 128, batch=2), "fp16", RecipeOptions(), 0.99)
