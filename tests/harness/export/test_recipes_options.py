"""Recipe options a user can get wrong fail fast with one line naming the flag; --keep-fp32 really keeps float."""

from __future__ import annotations

import pytest
import torch

from common.errors import BadInput
from harness.export.exporter import ProgramModule, example_inputs
from harness.export.recipes import RECIPES, RecipeOptions, get_recipe
from model.config import get_preset
from model.mobilebert import MobileBertForSequenceClassification


def tiny(**overrides) -> ProgramModule:
    torch.manual_seed(0)
    model = MobileBertForSequenceClassification(get_preset("test-tiny", **overrides))
    return ProgramModule(model, "sequence_classification").eval()


def is_quantized(linear: torch.nn.Linear) -> bool:
    return type(linear.weight) is not torch.nn.Parameter and type(linear.weight) is not torch.Tensor


def test_registry_lists_the_issue_recipes():
    assert set(RECIPES) == {"fp32", "fp16", "int8", "int8-static", "int4"}
    assert all(r.description for r in RECIPES.values())


def test_unknown_recipe_names_the_flag_and_the_choices():
    with pytest.raises(BadInput, match=r"--quant 'int3'.*int8"):
        get_recipe("int3")


def test_keep_fp32_matching_nothing_is_refused():
    with pytest.raises(BadInput, match=r"--keep-fp32 'layers\.7' matches no module"):
        get_recipe("int8").prepare(tiny(), example_inputs(8, 128), RecipeOptions(keep_fp32=["layers.7"]))


def test_keep_fp32_on_a_recipe_that_quantizes_nothing_is_refused():
    with pytest.raises(BadInput, match="nothing to keep"):
        get_recipe("fp32").prepare(tiny(), example_inputs(8, 128), RecipeOptions(keep_fp32=["classifier"]))


@pytest.mark.parametrize("g, msg", [(-32, "positive multiple of 32"), (48, "positive multiple of 32"),
                                    (64, r"does not divide the 96-wide input of .*trigram_conv.*--group-size 32 fits")])
def test_impossible_int4_group_size_is_refused(g, msg):
    model = tiny(embedding_size=32, hidden_size=64, intra_bottleneck_size=32, intermediate_size=64)
    with pytest.raises(BadInput, match=msg):
        get_recipe("int4").prepare(model, example_inputs(8, 128), RecipeOptions(group_size=g))


def test_int4_names_a_layer_no_group_size_can_fit():
    with pytest.raises(BadInput, match=r"48-wide input of model\.mobilebert\.embeddings\.trigram_conv.*--keep-fp32"):
        get_recipe("int4").prepare(tiny(), example_inputs(8, 128), RecipeOptions(group_size=32))


def test_int4_per_row_names_a_layer_whose_width_xnnpack_cannot_take():
    with pytest.raises(BadInput, match=r"--group-size row: the 48-wide input of model\.mobilebert\.embeddings\."
                                       r"trigram_conv is not a multiple of 32.*--keep-fp32"):
        get_recipe("int4").prepare(tiny(), example_inputs(8, 128), RecipeOptions(group_size=0))


def test_static_recipe_without_calibration_data_is_refused():
    with pytest.raises(BadInput, match="needs calibration data: pass --calibration"):
        get_recipe("int8-static").prepare(tiny(), example_inputs(8, 128), RecipeOptions(calibration=[]))


def test_bad_embedding_mode_and_group_are_refused():
    with pytest.raises(BadInput, match="--quant-embedding 'int2'"):
        get_recipe("int8").prepare(tiny(), example_inputs(8, 128), RecipeOptions(quant_embedding="int2"))
    with pytest.raises(BadInput, match=r"--group-size 12 cannot split the 16-wide embedding"):
        get_recipe("fp32").prepare(tiny(), example_inputs(8, 128), RecipeOptions(quant_embedding="4w", group_size=12))


def test_keep_fp32_keeps_the_named_modules_float_and_quantizes_the_rest():
    model = tiny()
    q = get_recipe("int8").prepare(model, example_inputs(8, 128), RecipeOptions(keep_fp32=["classifier", "layers.1"]))
    linears = {n: m for n, m in q.named_modules() if isinstance(m, torch.nn.Linear)}
    kept = [n for n in linears if n == "model.classifier" or n.startswith("model.mobilebert.layers.1.")]
    assert kept and all(not is_quantized(linears[n]) for n in kept)
    assert all(is_quantized(m) for n, m in linears.items() if n not in kept)


def test_prepare_leaves_the_reference_model_untouched():
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    get_recipe("int8").prepare(model, example_inputs(8, 128), RecipeOptions(quant_embedding="8w"))
    assert all(type(m.weight) is torch.nn.Parameter for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_int8_eager_model_stays_close_to_fp32():
    model, x = tiny(), example_inputs(16, 128, batch=4)
    ref = model(*x)[0]
    got = get_recipe("int8").prepare(model, example_inputs(16, 128), RecipeOptions())(*x)[0]
    rel = (got - ref).norm() / ref.norm()
    assert 0 < rel < 0.1
