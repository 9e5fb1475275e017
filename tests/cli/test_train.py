"""`harness train` on tiny models: labels alone, then KD from a fine-tuned Hugging Face BERT teacher."""

import json

import pytest
import torch
import transformers
from click.testing import CliRunner

from harness.commands.train import train_command
from data import encode, get_tokenizer, load_task
from common.errors import BadInput
from model.weights import load_checkpoint
from tests.support.distill_fixtures import tiny_task, tiny_vocab


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    return {"task": tiny_task(d), "vocab": tiny_vocab(d), "dir": d}


def _train(files, out, *extra):
    args = ["--task", str(files["task"]), "--tokenizer", str(files["vocab"]), "--seq-len", "16", "--batch-size", "16",
            "--lr", "3e-3", "--out", str(out), *extra]
    res = CliRunner().invoke(train_command, args)
    assert res.exit_code == 0, (res.output, res.exception)
    return res.output


def test_mobilebert_learns_the_task_and_saves_a_transformers_checkpoint(files, tmp_path):
    out = tmp_path / "student"
    text = _train(files, out, "--model", "test-tiny", "--steps", "150")
    result = json.loads((out / "eval_dev.json").read_text())
    assert result["accuracy"] > 0.9, result  # keyword sentiment: chance is 0.5
    assert f"dev accuracy {result['accuracy']:.4f}" in text
    ours, head = load_checkpoint(out)
    assert head == "sequence_classification"
    theirs = transformers.MobileBertForSequenceClassification.from_pretrained(str(out)).eval()
    tok = get_tokenizer(out)  # the checkpoint carries its tokenizer
    enc = {k: torch.from_numpy(v) for k, v in encode(tok, load_task(str(files["task"]), "dev").texts[:4], 16).items()}
    assert torch.allclose(ours(**enc).logits, theirs(**enc).logits, atol=1e-4)


def test_kd_from_a_fine_tuned_hf_bert_teacher(files, tmp_path):
    torch.manual_seed(0)
    bert_cfg = transformers.BertConfig(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, max_position_embeddings=64)
    raw = tmp_path / "bert-raw"
    transformers.BertModel(bert_cfg).save_pretrained(str(raw))
    teacher = tmp_path / "bert-teacher"
    _train(files, teacher, "--model", str(raw), "--steps", "100")
    teacher_acc = json.loads((teacher / "eval_dev.json").read_text())["accuracy"]
    assert teacher_acc > 0.9
    student = tmp_path / "kd-student"
    text = _train(files, student, "--model", "test-tiny", "--teacher", str(teacher), "--alpha", "0.2",
                  "--init-embeddings-from", str(teacher), "--steps", "150")
    assert "teacher dev accuracy" in text
    log = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    assert {"ce", "kd", "loss"} <= set(log[-1]) and log[-1]["kd"] < log[0]["kd"]
    assert json.loads((student / "eval_dev.json").read_text())["accuracy"] > 0.85
    assert (student / "teacher_logits.npy").is_file()  # scored once, reused on resume


def test_rerun_of_a_finished_run_resumes_instead_of_retraining(files, tmp_path):
    out = tmp_path / "s"
    _train(files, out, "--model", "test-tiny", "--steps", "5")
    first = (out / "model.safetensors").read_bytes()
    _train(files, out, "--model", "test-tiny", "--steps", "5")
    assert (out / "model.safetensors").read_bytes() == first
    res = CliRunner().invoke(train_command, ["--task", str(files["task"]), "--tokenizer", str(files["vocab"]),
                                             "--model", "test-tiny", "--steps", "6", "--out", str(out)])
    assert isinstance(res.exception, BadInput) and "different settings" in str(res.exception)


def test_bad_inputs(files, tmp_path):
    def run(*args):
        return CliRunner().invoke(train_command, ["--task", str(files["task"]), "--tokenizer", str(files["vocab"]),
                                                  "--steps", "1", "--out", str(tmp_path / "o"), *args])

    res = run("--model", "no-such-preset")
    assert isinstance(res.exception, BadInput) and "no-such-preset" in str(res.exception)
    res = run("--model", "test-tiny", "--transfer-corpus", str(files["task"]))
    assert isinstance(res.exception, BadInput) and "needs a --teacher" in str(res.exception)
    res = run("--model", "test-tiny", "--steps", "0")
    assert isinstance(res.exception, BadInput) and "--steps" in str(res.exception)
