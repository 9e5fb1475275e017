"""`harness distill` end to end on tiny presets: checkpoints transformers loads, seeded, resumable, clear errors."""

import json

import pytest
import torch
from click.testing import CliRunner

from harness.commands.train import distill_command
from common.errors import BadInput, CheckpointError
from model.distill import models
from model.distill.loop import STATE_FILE, LoopConfig, check_not_partial
from model.distill.strategies import TransferWeights
from model.distill.trainer import distill
from model.weights import load_checkpoint, read_weights
from tests.support.distill_fixtures import tiny_corpus, tiny_vocab


def _args(tmp_path, out, *extra):
    return ["--teacher", "test-tiny-teacher", "--student", "test-tiny", "--corpus", str(tiny_corpus(tmp_path)),
            "--tokenizer", str(tiny_vocab(tmp_path)), "--seq-len", "16", "--batch-size", "4", "--lr", "3e-3",
            "--out", str(out), *extra]


def test_cli_progressive_writes_a_checkpoint_transformers_loads(tmp_path):
    out = tmp_path / "student"
    res = CliRunner().invoke(distill_command, _args(tmp_path, out, "--strategy", "progressive", "--steps", "3"))
    assert res.exit_code == 0, res.output
    assert "pd_mlm" in res.output and "last stage pd" in res.output
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["desc"] for r in log] == ["layer-1", "layer-2", "pd"]  # log_every=20 > steps: one row per stage end
    assert "fmt_1" in log[0] and "at_2" in log[1] and {"pd_mlm", "pd_kd", "pd_nsp"} <= set(log[2])
    ours, head = load_checkpoint(out)
    assert head == "pretraining"
    import transformers

    theirs = transformers.MobileBertForPreTraining.from_pretrained(str(out)).eval()
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    assert torch.allclose(ours(ids).prediction_logits, theirs(input_ids=ids).prediction_logits, atol=1e-4)
    assert (out / "vocab.txt").is_file() and (out / "tokenizer.json").is_file()
    check_not_partial(out)  # finished: usable as a teacher or a model


def _run(tmp_path, out, steps=12, crash_at=None):
    cfg = LoopConfig(steps=steps, batch_size=4, lr=3e-3, save_every=5)
    from data import get_tokenizer

    tok = get_tokenizer(tiny_vocab(tmp_path))
    texts = tiny_corpus(tmp_path).read_text().splitlines()
    if crash_at is not None:
        import model.distill.loop as loop

        real = loop.torch.nn.utils.clip_grad_norm_
        calls = {"n": 0}

        def crash(*a, **k):
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise KeyboardInterrupt("killed")
            return real(*a, **k)

        loop.torch.nn.utils.clip_grad_norm_ = crash
        try:
            with pytest.raises(KeyboardInterrupt):
                distill("test-tiny-teacher", "test-tiny", "joint", texts, out, cfg, tokenizer=tok)
        finally:
            loop.torch.nn.utils.clip_grad_norm_ = real
    torch.manual_seed(123)  # a different global seed must not matter: the run is seeded by its own --seed
    return distill("test-tiny-teacher", "test-tiny", "joint", texts, out, cfg, tokenizer=tok)


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    _run(tmp_path, tmp_path / "a")
    # Killed in the first stage, after the step-10 save of 'transfer': the rerun resumes, not restarts.
    _run(tmp_path, tmp_path / "b", crash_at=11)
    a, b = read_weights(tmp_path / "a"), read_weights(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted one"
    log = (tmp_path / "b" / "train_log.jsonl").read_text()
    assert "resuming" not in log  # the log holds rows, not messages
    assert torch.load(tmp_path / "b" / STATE_FILE, weights_only=False)["done"]


def test_interrupted_checkpoint_is_refused_as_a_model(tmp_path):
    out = tmp_path / "partial"
    _run(tmp_path, out, crash_at=7)  # then finishes; fake the interruption by rewinding the state flag
    state = torch.load(out / STATE_FILE, weights_only=False)
    state["done"] = False
    torch.save(state, out / STATE_FILE)
    with pytest.raises(ValueError, match="interrupted run.*resume"):
        models.resolve(str(out))


def test_bad_inputs(tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    res = runner.invoke(distill_command, _args(tmp_path, tmp_path / "x", "--steps", "1") + ["--corpus", str(empty)])
    assert res.exit_code != 0 and isinstance(res.exception, BadInput) and "is empty" in str(res.exception)
    res = runner.invoke(distill_command, _args(tmp_path, tmp_path / "x", "--steps", "1") + ["--corpus", "nope.txt"])
    assert isinstance(res.exception, BadInput) and "nope.txt does not exist" in str(res.exception)
    # A teacher of another width: FMT is impossible, AT and PD are not; the message says so.
    wide = models.load("test-tiny-teacher", "pretraining", hidden_size=48)
    models.save(wide, tmp_path / "wide")
    with pytest.raises(ValueError, match=r"FMT: feature-map width \(hidden_size\) 32 vs 48.*still possible: AT, PD"):
        distill(str(tmp_path / "wide"), "test-tiny", "auxiliary", ["a b c", "d e f"], tmp_path / "y",
                LoopConfig(steps=1), TransferWeights(at=0))
    with pytest.raises(ValueError, match="every loss weight is zero"):
        distill("test-tiny-teacher", "test-tiny", "joint", ["a b c", "d e f"], tmp_path / "z",
                LoopConfig(steps=1), TransferWeights(fmt=0, at=0, pd=0))
    # Resuming with other settings is refused rather than mixing two runs in one directory.
    _run(tmp_path, tmp_path / "r", steps=2)
    with pytest.raises(ValueError, match="other settings"):
        distill("test-tiny-teacher", "test-tiny", "progressive", ["a b c", "d e f"], tmp_path / "r",
                LoopConfig(steps=2, batch_size=4))


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path):
    import transformers

    cfg = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=32)
    model = transformers.BertForSequenceClassification(cfg)
    out = tmp_path / "ckpt"
    models.save(model, out)
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}

    def crash(directory, **kw):
        (__import__("pathlib").Path(directory) / "model.safetensors").write_bytes(b"half a file")
        raise KeyboardInterrupt("killed while saving")

    model.save_pretrained = crash
    with pytest.raises(KeyboardInterrupt):
        models.save(model, out)
    after = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    assert after == before
    assert not [p for p in out.iterdir() if p.name.startswith(".save-")]  # no temp dir left behind
