"""Presets and config.json round trips, against transformers' own MobileBertConfig."""

from __future__ import annotations

import dataclasses

import pytest
import transformers

from common.errors import BadInput
from model.config import PRESETS, MobileBertConfig, get_preset, list_presets


def test_preset_names_and_fresh_copies():
    assert {"mobilebert", "mobilebert-tiny", "ib-bert-large", "test-tiny", "test-tiny-teacher"} <= set(list_presets())
    a = get_preset("mobilebert")
    a.num_hidden_layers = 3
    assert get_preset("mobilebert").num_hidden_layers == 24 == PRESETS["mobilebert"].num_hidden_layers


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"'mobilebrt'.*mobilebert, .*mobilebert-noopt, .*mobilebert-tiny"):
        get_preset("mobilebrt")
    with pytest.raises(ValueError, match="num_layers"):
        get_preset("mobilebert", num_layers=4)
    assert get_preset("mobilebert", num_hidden_layers=4).num_hidden_layers == 4


def test_released_mobilebert_shape():
    c = get_preset("mobilebert")
    assert (c.num_hidden_layers, c.hidden_size, c.intra_bottleneck_size, c.true_hidden_size) == (24, 512, 128, 128)
    assert (c.num_attention_heads, c.num_feedforward_networks, c.intermediate_size, c.embedding_size) == (4, 4, 512, 128)
    assert c.trigram_input and c.key_query_shared_bottleneck and not c.use_bottleneck_attention
    assert (c.normalization_type, c.hidden_act, c.classifier_activation) == ("no_norm", "relu", False)


def test_teacher_lines_up_with_students():
    for student, teacher in [("mobilebert", "ib-bert-large"), ("test-tiny", "test-tiny-teacher")]:
        s, t = get_preset(student), get_preset(teacher)
        # layer-wise feature-map and attention transfer need equal inter-block width, heads and depth
        assert (s.hidden_size, s.num_attention_heads, s.num_hidden_layers, s.vocab_size) == (
            t.hidden_size, t.num_attention_heads, t.num_hidden_layers, t.vocab_size)
    t = get_preset("ib-bert-large")
    assert (t.intra_bottleneck_size, t.intermediate_size, t.normalization_type, t.hidden_act) == (
        1024, 4096, "layer_norm", "gelu")


def test_tiny_presets_are_tiny():
    for name in ("test-tiny", "test-tiny-teacher"):
        c = get_preset(name)
        assert c.num_hidden_layers == 2 and 100 <= c.vocab_size <= 1000 and c.max_position_embeddings <= 64


def test_empty_config_json_means_transformers_defaults():
    ours, theirs = MobileBertConfig.from_hf_dict({}), transformers.MobileBertConfig()
    for f in dataclasses.fields(MobileBertConfig):
        if f.name != "id2label":
            assert getattr(ours, f.name) == getattr(theirs, f.name), f.name
    assert ours.true_hidden_size == theirs.true_hidden_size


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_hf_dict_round_trips_through_transformers(name):
    cfg = get_preset(name)
    d = cfg.to_hf_dict()
    assert d["model_type"] == "mobilebert"
    hf = transformers.MobileBertConfig(**d)
    assert hf.true_hidden_size == cfg.true_hidden_size and hf.num_labels == cfg.num_labels
    assert MobileBertConfig.from_hf_dict(hf.to_dict()) == cfg


def test_from_hf_dict_ignores_unknown_keys_and_reads_labels():
    d = get_preset("test-tiny").to_hf_dict() | {"architectures": ["X"], "transformers_version": "9", "foo": 1}
    d["id2label"] = {"0": "negative", "1": "positive", "2": "neutral"}
    cfg = MobileBertConfig.from_hf_dict(d)
    assert cfg.num_labels == 3 and cfg.id2label == {0: "negative", 1: "positive", 2: "neutral"}
    assert cfg.to_hf_dict()["label2id"] == {"negative": 0, "positive": 1, "neutral": 2}


@pytest.mark.parametrize("change, culprit", [
    ({"num_attention_heads": 3}, "num_attention_heads"),
    ({"normalization_type": "batch_norm"}, "normalization_type"),
    ({"hidden_act": "mish"}, "hidden_act"),
    ({"num_hidden_layers": 0}, "num_hidden_layers"),
    ({"embedding_size": 64}, "embedding_size"),
    ({"key_query_shared_bottleneck": False}, "intra_bottleneck_size"),
    ({"pad_token_id": 500}, "pad_token_id"),
])
def test_bad_shapes_name_the_field(change, culprit):
    with pytest.raises(ValueError, match=culprit):
        get_preset("test-tiny", **change)
