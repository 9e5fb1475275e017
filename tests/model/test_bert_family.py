"""BERT-family checkpoints and presets through `export`: transformers' own modeling code, lowered like MobileBERT,
the program's outputs checked against transformers' eager model through the real .pte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from common.errors import BadInput, CheckpointError, HarnessError
from harness.export.exporter import ExportRequest, build_model, example_inputs, export
from model import bert_family
from tests.support.paths import REPO

TINY_BERT = dict(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=64)
TINY_DISTIL = dict(vocab_size=128, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64)


def _save(model, path: Path) -> Path:
    torch.manual_seed(1)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bert_cls(tmp_path_factory):
    torch.manual_seed(3)
    cfg = transformers.BertConfig(**TINY_BERT, num_labels=3)
    return _save(transformers.BertForSequenceClassification(cfg), tmp_path_factory.mktemp("ck") / "bert-cls")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return tmp_path_factory.mktemp("results")


def _run_pte(program: Path, ids, mask, types):
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(program)).load_method("forward")
    return [t.numpy() for t in method.execute([ids, mask, types])]


def _inputs(seq_len: int, vocab: int):
    ids, mask, types = example_inputs(seq_len, vocab, seed=5)
    mask[0, seq_len - 5:] = 0  # padding handled as transformers handles it
    types[0, seq_len // 2:] = 1
    return ids, mask, types


def test_bert_checkpoint_exports_and_matches_transformers(bert_cls, results):
    res = export(ExportRequest(checkpoint=bert_cls, seq_len=16, numerics_task=None), results)
    m = res.manifest
    assert m.head == "sequence_classification" and m.outputs == ["logits"] and m.num_labels == 3
    assert m.config["model_type"] == "bert" and m.config["architectures"] == ["BertForSequenceClassification"]
    assert m.checkpoint_sha256 and not m.random_weights and m.model == "checkpoint"
    assert m.delegation["delegated_by_op"].get("aten_linear_default", 0) > 0
    ids, mask, types = _inputs(16, 128)
    eager = transformers.BertForSequenceClassification.from_pretrained(bert_cls, attn_implementation="eager").eval()
    with torch.no_grad():
        want = eager(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.numpy()
    got = _run_pte(res.program, ids, mask, types)[0]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    again = export(ExportRequest(checkpoint=bert_cls, seq_len=16, numerics_task=None), results)
    assert again.cached and again.program == res.program


def test_distilbert_question_answering_checkpoint(tmp_path, results):
    ckpt = _save(transformers.DistilBertForQuestionAnswering(transformers.DistilBertConfig(**TINY_DISTIL)),
                 tmp_path / "distil-qa")
    res = export(ExportRequest(checkpoint=ckpt, seq_len=16, numerics_task=None), results)
    assert res.manifest.head == "question_answering" and res.manifest.outputs == ["start_logits", "end_logits"]
    assert res.manifest.config["model_type"] == "distilbert"
    ids, mask, types = _inputs(16, 128)
    eager = transformers.DistilBertForQuestionAnswering.from_pretrained(ckpt, attn_implementation="eager").eval()
    with torch.no_grad():
        out = eager(input_ids=ids, attention_mask=mask)  # DistilBERT has no token types: they are not read
    start, end = _run_pte(res.program, ids, mask, types)
    np.testing.assert_allclose(start, out.start_logits.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(end, out.end_logits.numpy(), atol=1e-4, rtol=0)


def test_unsupported_architecture_is_one_line_before_lowering(tmp_path, results):
    ckpt = _save(transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)),
                 tmp_path / "gpt2")
    with pytest.raises(HarnessError) as e:
        export(ExportRequest(checkpoint=ckpt, seq_len=16, numerics_task=None), results)
    msg = str(e.value)
    assert e.value.exit_code == 2 and "\n" not in msg
    assert "'gpt2'" in msg and "'bert'" in msg and "'distilbert'" in msg and "'mobilebert'" in msg
    for kind in ("t5", "vit"):  # a config alone is refused: nothing is loaded
        (tmp_path / kind).mkdir()
        (tmp_path / kind / "config.json").write_text(json.dumps({"model_type": kind}))
        with pytest.raises(BadInput, match=f"model_type '{kind}' is not supported"):
            build_model(ExportRequest(checkpoint=tmp_path / kind))
    assert not list((results / "programs").glob("gpt2*")) if (results / "programs").exists() else True


def test_head_that_does_not_fit_is_one_line(tmp_path):
    tok = _save(transformers.BertForTokenClassification(transformers.BertConfig(**TINY_BERT)), tmp_path / "tok")
    with pytest.raises(CheckpointError, match="BertForTokenClassification has no program head") as e:
        build_model(ExportRequest(checkpoint=tok))
    assert "\n" not in str(e.value)
    qa = _save(transformers.BertForQuestionAnswering(transformers.BertConfig(**TINY_BERT, num_labels=3)),
               tmp_path / "qa3")
    with pytest.raises(CheckpointError, match="question-answering head has 2 outputs"):
        build_model(ExportRequest(checkpoint=qa))


def test_cli_refuses_unsupported_checkpoint_with_exit_2(tmp_path):
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text(json.dumps({"model_type": "t5", "architectures": ["T5Model"]}))
    p = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path / "r"), "export",
                        "--checkpoint", str(tmp_path / "t5")], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "model_type 't5' is not supported" in lines[0]
    assert not (tmp_path / "r" / "programs").exists() or not list((tmp_path / "r" / "programs").iterdir())


@pytest.mark.parametrize("name,layers,width,params", [
    ("bert-base", 12, 768, 109.5e6), ("distilbert-base", 6, 768, 66.4e6), ("minilm-l6", 6, 384, 22.7e6)])
def test_presets_have_the_published_shapes(name, layers, width, params):
    cfg = bert_family.PRESETS[name]
    assert cfg.get("num_hidden_layers", cfg.get("n_layers")) == layers
    assert cfg.get("hidden_size", cfg.get("dim")) == width
    with torch.device("meta"):
        model = bert_family.build_preset(name, "base")
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - params) / params < 0.01, n


def test_minilm_preset_is_the_shipped_minilm_shape_and_loads_its_real_weights():
    from model.distill.models import minilm_dir

    shipped = json.loads((minilm_dir() / "config.json").read_text())
    preset = bert_family.PRESETS["minilm-l6"]
    for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"):
        assert preset[k] == shipped[k], k
    model, head, cfg, sha = build_model(ExportRequest(checkpoint=minilm_dir()))
    assert head == "base" and cfg["model_type"] == "bert" and sha
    from safetensors.torch import load_file

    real = load_file(str(minilm_dir() / "model.safetensors"))
    key = next(k for k in real if k.endswith("embeddings.word_embeddings.weight"))
    assert torch.equal(model.hf.embeddings.word_embeddings.weight, real[key])


def test_bert_preset_exports_with_random_weights_said(results):
    res = export(ExportRequest(model="test-tiny-bert", seq_len=16, numerics_samples=8), results)
    m = res.manifest
    assert m.model == "test-tiny-bert" and m.random_weights and m.status == "ok"
    assert m.numerics["top1_agreement"] == 1.0


def test_unknown_preset_lists_both_families():
    with pytest.raises(BadInput) as e:
        build_model(ExportRequest(model="bert-large"))
    assert "bert-base" in str(e.value) and "mobilebert-noopt" in str(e.value)


def test_paper_variants_change_only_norm_and_activation():
    from model.config import get_preset

    base = get_preset("mobilebert")
    for name, norm, act in (("mobilebert-noopt", "layer_norm", "gelu"), ("mobilebert-nonorm-gelu", "no_norm", "gelu"),
                            ("mobilebert-layernorm-relu", "layer_norm", "relu")):
        cfg = get_preset(name)
        assert (cfg.normalization_type, cfg.hidden_act) == (norm, act)
        assert cfg.replace(normalization_type=base.normalization_type, hidden_act=base.hidden_act) == base
