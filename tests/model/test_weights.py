"""Checkpoint directories: what loads, what we write, and the one-line errors for what does not fit."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from common.errors import CheckpointError
from model.config import get_preset
from model.mobilebert import (MobileBertForMaskedLM, MobileBertForQuestionAnswering,
                              MobileBertForSequenceClassification, MobileBertModel)
from model.weights import load_checkpoint, save_checkpoint, to_hf_state_dict


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    model = MobileBertForSequenceClassification(get_preset("test-tiny", num_labels=3))
    return save_checkpoint(model, tmp_path / "ckpt"), model


def logits(model, seed=0):
    ids = torch.randint(0, model.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(ids).logits


def test_save_then_load_is_exact(ckpt):
    path, model = ckpt
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["MobileBertForSequenceClassification"] and len(config["id2label"]) == 3
    loaded, head = load_checkpoint(path)
    assert head == "sequence_classification" and not loaded.training
    assert torch.equal(logits(model), logits(loaded))


def test_pytorch_model_bin_and_overwrite_keep_other_files(ckpt):
    path, model = ckpt
    (path / "vocab.txt").write_text("[PAD]\n")
    save_checkpoint(model, path, safe_serialization=False)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "pytorch_model.bin", "vocab.txt"]
    assert torch.equal(logits(model), logits(load_checkpoint(path)[0]))
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temporary directory left behind"


def test_head_guessed_from_keys_without_architectures(tmp_path):
    for cls, head in [(MobileBertForQuestionAnswering, "question_answering"), (MobileBertForMaskedLM, "masked_lm"),
                      (MobileBertModel, "base")]:
        path = save_checkpoint(cls(get_preset("test-tiny")), tmp_path / head)
        config = json.loads((path / "config.json").read_text())
        del config["architectures"]
        (path / "config.json").write_text(json.dumps(config))
        assert load_checkpoint(path)[1] == head


def test_base_model_loads_a_head_checkpoints_body(ckpt):
    path, model = ckpt
    from model.weights import load_hf_state_dict
    sd = {k: v for k, v in load_file(str(path / "model.safetensors")).items() if k.startswith("mobilebert.")}
    base = MobileBertModel(model.config)
    load_hf_state_dict(base, sd)
    ids = torch.randint(0, 100, (1, 6))
    with torch.no_grad():
        assert torch.equal(base.eval()(ids).pooled_output, model.eval().mobilebert(ids).pooled_output)


def test_missing_directory_and_config(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty/config.json: no config.json"):
        load_checkpoint(tmp_path / "empty")


def test_bad_config_json_is_named(ckpt):
    path, _ = ckpt
    (path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json: not readable JSON"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match=r"config.json: model_type is 'bert'"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({"num_attention_heads": 3}))
    with pytest.raises(ValueError, match=r"config.json: num_attention_heads=3"):
        load_checkpoint(path)


@pytest.mark.parametrize("name, content", [("model.safetensors", b"\x00garbage" * 10),
                                           ("pytorch_model.bin", b"not a zip or pickle"),
                                           ("model.safetensors", b"")])
def test_garbage_weights_file_is_named(ckpt, name, content):
    path, _ = ckpt
    (path / "model.safetensors").unlink()
    (path / name).write_bytes(content)
    with pytest.raises(ValueError, match=rf"{name}: unreadable weights file"):
        load_checkpoint(path)


def test_no_weights_file(ckpt):
    path, _ = ckpt
    (path / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="no model.safetensors or pytorch_model.bin"):
        load_checkpoint(path)


def test_unknown_missing_and_mis_shaped_keys_are_all_named(ckpt):
    path, model = ckpt
    sd = to_hf_state_dict(model)
    del sd["mobilebert.encoder.layer.1.attention.self.query.weight"]
    sd["mobilebert.encoder.layer.0.ffn.7.output.dense.weight"] = torch.zeros(2)
    sd["classifier.weight"] = torch.zeros(5, 32)
    save_file(sd, str(path / "model.safetensors"))
    with pytest.raises(ValueError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    assert "missing key mobilebert.encoder.layer.1.attention.self.query.weight" in msg
    assert "unexpected key mobilebert.encoder.layer.0.ffn.7.output.dense.weight" in msg
    assert "shape mismatch for classifier.weight: checkpoint (5, 32), model (3, 32)" in msg


def test_sharded_checkpoint(ckpt):
    path, model = ckpt
    sd = load_file(str(path / "model.safetensors"))
    keys = sorted(sd)
    half = len(keys) // 2
    for i, part in enumerate([keys[:half], keys[half:]]):
        save_file({k: sd[k] for k in part}, str(path / f"model-0000{i + 1}-of-00002.safetensors"))
    (path / "model.safetensors").unlink()
    weight_map = {k: f"model-0000{1 + (i >= half)}-of-00002.safetensors" for i, k in enumerate(keys)}
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert torch.equal(logits(model), logits(load_checkpoint(path)[0]))
    (path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ValueError, match="model-00002-of-00002.safetensors: shard named in"):
        load_checkpoint(path)


def test_a_foreign_checkpoint_is_summarised(ckpt):
    path, model = ckpt
    sd = {f"bert.encoder.layer.{i}.attention.self.query.weight": torch.zeros(2) for i in range(40)}
    save_file(sd, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"\((\d+) problems\): unexpected key bert.*; and \d+ more$"):
        load_checkpoint(path)
