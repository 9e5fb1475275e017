"""Checkpoints from anywhere: which tokenizer a checkpoint gets (and the one line when none fits, before lowering),
--checkpoint ORG/NAME through huggingface_hub (stood in for at the network boundary), non-MobileBERT models
refused before their weights are fetched, and a lowered program kept when its numerics check fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import data
from common.errors import BadInput, CheckpointError
from harness.export.exporter import ExportRequest, export
from harness.run import measure
from tests.support.factories import save_pretrained_checkpoint


def _vocab_file(path: Path, words: int) -> Path:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    path.write_text("".join(f"{w}\n" for w in specials + [f"w{i}" for i in range(words - len(specials))]))
    return path


def test_tokenizer_choice(tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shipped = data.choose_tokenizer(None, bare, 30522)
    assert shipped.source == data.SHIPPED_TOKENIZER and "has no tokenizer files" in shipped.note
    assert shipped.load().get_vocab_size() == 30522
    other = data.choose_tokenizer(None, bare, 500)
    assert other.source is None and "--tokenizer DIR|FILE" in other.problem and "--numerics-task none" in other.problem
    with pytest.raises(BadInput, match="--numerics-task none"):
        other.load()
    own = tmp_path / "own"
    own.mkdir()
    _vocab_file(own / "vocab.txt", 500)
    assert data.choose_tokenizer(None, own, 500).source == str((own / "vocab.txt").resolve())
    assert data.choose_tokenizer(None, own, 512).source is not None  # a padded embedding table still fits
    with pytest.raises(BadInput, match="has 500 words but the model's vocab_size is 30522"):
        data.choose_tokenizer(None, own, 30522)
    with pytest.raises(BadInput, match="has 500 words but the model's vocab_size is 128"):
        data.choose_tokenizer(own / "vocab.txt", bare, 128)
    assert data.choose_tokenizer(None, None, 128).source == data.SHIPPED_TOKENIZER  # presets: toy vocab, folded ids


def _cli(results: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def _one_line(p: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in p.stderr + p.stdout
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]  # progress lines may precede it
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_checkpoint_without_a_fitting_tokenizer_is_refused_before_lowering(tmp_path):
    ckpt = save_pretrained_checkpoint(tmp_path / "small-vocab", head="SequenceClassification", vocab_size=500)
    p = _cli(tmp_path / "r1", "export", "--checkpoint", str(ckpt), "--seq-len", "16")
    assert p.returncode == 2
    line = _one_line(p)
    assert "vocab_size 500" in line and "--tokenizer DIR|FILE" in line and "--numerics-task none" in line
    assert not (tmp_path / "r1").exists()
    wrong = _vocab_file(tmp_path / "vocab.txt", 200)
    p = _cli(tmp_path / "r2", "export", "--checkpoint", str(ckpt), "--tokenizer", str(wrong), "--seq-len", "16")
    assert p.returncode == 2 and "has 200 words but the model's vocab_size is 500" in _one_line(p)
    assert not (tmp_path / "r2").exists()


def _fake_hub(monkeypatch, served: Path, revision: str, calls: list):
    """huggingface_hub's two download calls, answered from a local folder laid out like its cache."""
    import huggingface_hub

    snapshot = served.parent / "snapshots" / revision
    if not snapshot.exists():
        snapshot.parent.mkdir(parents=True)
        served.rename(snapshot)

    def hf_hub_download(repo, filename, **kw):
        calls.append(("file", repo, filename))
        return str(snapshot / filename)

    def snapshot_download(repo, **kw):
        calls.append(("snapshot", repo, tuple(kw.get("allow_patterns") or ())))
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return snapshot


def test_hub_checkpoint_saved_by_transformers_exports_and_runs(tmp_path, monkeypatch):
    from common.console import silence_libraries

    silence_libraries()
    revision = "0123456789abcdef0123456789abcdef01234567"
    calls: list = []
    served = save_pretrained_checkpoint(tmp_path / "hub" / "tiny", head="SequenceClassification")
    _fake_hub(monkeypatch, served, revision, calls)
    results = tmp_path / "results"
    res = export(ExportRequest(checkpoint=Path("someorg/tiny-mobilebert"), seq_len=16, numerics_samples=8), results)
    assert calls[0] == ("file", "someorg/tiny-mobilebert", "config.json") and calls[1][0] == "snapshot"
    m = res.manifest
    assert m.checkpoint_source == {"hub": "someorg/tiny-mobilebert", "revision": revision}
    assert res.program.name.startswith("tiny-mobilebert-fp32-s16-") and m.status == "ok"
    assert m.tokenizer == data.SHIPPED_TOKENIZER and res.notes and not m.random_weights
    rec = measure.run(measure.RunRequest.of(program=res.program, task="rotten_tomatoes", samples=8, iterations=2,
                                         warmup=0), results)
    assert rec.status != "failed", rec.error
    assert rec.accuracy.agreement_fp32 == 1.0 and 0.0 <= rec.accuracy.value <= 1.0  # a trained-kind program


def test_non_mobilebert_hub_model_is_refused_before_its_weights(tmp_path, monkeypatch):
    # bert and distilbert are exported since issue #26 (tests/model/test_bert_family.py); GPT-2 is not
    served = tmp_path / "hub" / "gpt2"
    served.mkdir(parents=True)
    (served / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    calls: list = []
    _fake_hub(monkeypatch, served, "f" * 40, calls)
    with pytest.raises(CheckpointError, match=r"--checkpoint openai-community/gpt2: model_type 'gpt2' is not "
                                              r"supported: the harness exports model_type 'mobilebert', 'bert'"):
        export(ExportRequest(checkpoint=Path("openai-community/gpt2")), tmp_path / "results")
    assert [c[0] for c in calls] == ["file"]  # config.json only: no weights fetched
    assert not (tmp_path / "results").exists()


def test_hub_checkpoint_offline_is_one_line(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    p = _cli(tmp_path / "r", "export", "--checkpoint", "google/mobilebert-uncased", env=env)
    assert p.returncode == 2
    line = _one_line(p)
    assert "google/mobilebert-uncased" in line and "unreachable" in line and "local checkpoint folder" in line
    assert not (tmp_path / "r").exists()


def test_failed_numerics_check_keeps_the_lowered_program(tmp_path):
    from common.console import silence_libraries

    silence_libraries()
    results = tmp_path / "results"
    with pytest.raises(BadInput, match="missing.csv does not exist"):
        export(ExportRequest(model="test-tiny", seq_len=16, numerics_task=str(tmp_path / "missing.csv")), results)
    [pte] = (results / "programs").glob("*.pte")  # lowered and cached before numerics
    res = export(ExportRequest(model="test-tiny", seq_len=16, numerics_samples=8), results)
    assert res.cached and res.program == pte  # no second lowering
    assert res.manifest.numerics["n"] == 8 and res.manifest.numerics["task"] == "rotten_tomatoes"
    again = export(ExportRequest(model="test-tiny", seq_len=16, numerics_samples=8), results)
    assert again.cached and again.manifest.numerics == res.manifest.numerics
