"""Bad input, refused before any export, run or write: a tokenizer whose vocabulary is not the model's,
a SQuAD file with a missing field, a classification task on a QA program (and the reverse), a --checkpoint that is
not a supported model_type. Each is one line on stderr naming the cause, exit 2, and no results folder.

(The same cases on an exported program, and after lowering, are in tests/cli/test_run_squad.py,
tests/harness/export/test_hub.py and tests/cli/test_train_tokenizer_fit.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import BadInput
from data.squad import parse_squad
from tests.support.paths import FIXTURES

SQUAD = FIXTURES / "squad-tiny.json"
QA = ["--model", "test-tiny", "--head", "question_answering", "--seq-len", "64"]


def _refused(tmp_path: Path, *args: str) -> str:
    """Run the CLI; assert exit 2, no traceback, nothing written; return the one line it printed."""
    results = tmp_path / "results"
    p = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), *args], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith("…")]  # progress lines aside
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert not results.exists(), sorted(results.rglob("*"))
    return lines[0]


def _without(path: tuple, tmp_path: Path) -> Path:
    """squad-tiny.json with one field removed (path: keys and indices down to it)."""
    doc = json.loads(SQUAD.read_text())
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    out = tmp_path / f"no-{path[-1]}.json"
    out.write_text(json.dumps(doc))
    return out


@pytest.mark.parametrize("path, says", [
    (("data",), "the file has no 'data' field"),
    (("data", 0, "paragraphs", 0, "context"), "data[0].paragraphs[0] has no 'context' field"),
    (("data", 0, "paragraphs", 0, "qas", 0, "answers"), "data[0].paragraphs[0].qas[0] has no 'answers' field"),
])
def test_squad_file_with_a_missing_field_is_refused_before_the_export(tmp_path, path, says):
    broken = _without(path, tmp_path)
    line = _refused(tmp_path, "run", *QA, "--task", str(broken))
    assert str(broken) in line and says in line and "not SQuAD format" in line


@pytest.mark.parametrize("path, says", [
    (("data", 0, "paragraphs", 0, "qas", 0, "question"), "data[0].paragraphs[0].qas[0] has no 'question' field"),
    (("data", 0, "paragraphs", 0, "qas", 0, "id"), "data[0].paragraphs[0].qas[0] has no 'id' field"),
    (("data", 0, "paragraphs", 0, "qas", 0, "answers", 0, "text"), "qas[0].answers[0] has no 'text' field"),
    (("data", 0, "paragraphs"), "data[0] has no 'paragraphs' field"),
])
def test_every_squad_field_is_named_when_missing(tmp_path, path, says):
    broken = _without(path, tmp_path)
    with pytest.raises(BadInput, match=r"has no .* field") as e:
        parse_squad(json.loads(broken.read_text()), broken)
    assert says in str(e.value)


def test_classification_task_on_a_qa_program_and_the_reverse(tmp_path):
    line = _refused(tmp_path, "run", *QA, "--task", "rotten_tomatoes")
    assert "--task rotten_tomatoes is a classification task" in line and "--task squad" in line
    line = _refused(tmp_path, "run", "--model", "test-tiny", "--seq-len", "64", "--task", str(SQUAD))
    assert "is question answering but the program's head is sequence_classification" in line
    assert "--head question_answering" in line


def test_a_list_of_records_on_a_qa_program_is_a_classification_task(tmp_path):
    records = tmp_path / "reviews.json"
    records.write_text(json.dumps([{"text": "a fine film", "label": 1}, {"text": "dull", "label": 0}]))
    assert "is a classification task" in _refused(tmp_path, "run", *QA, "--task", str(records))


def test_tokenizer_of_another_vocabulary_is_refused(tmp_path):
    """(export refuses it too, through the same check: tests/harness/export/test_hub.py)"""
    from data import default_vocab

    vocab = str(default_vocab())  # bert-base-uncased, 30522 words; test-tiny has 128
    line = _refused(tmp_path, "run", "--model", "test-tiny", "--seq-len", "16", "--task", "rotten_tomatoes",
                    "--tokenizer", vocab)
    assert "has 30522 words but the model's vocab_size is 128" in line and "--tokenizer DIR|FILE" in line


def test_checkpoint_that_is_not_mobilebert_is_refused(tmp_path):
    """(run --checkpoint takes the same path; a hub id is refused before its weights: tests/harness/export/test_hub.py)"""
    bert = tmp_path / "t5-small"  # bert and distilbert are exported since issue #26 (tests/model/test_bert_family.py)
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "t5", "vocab_size": 32128,
                                                  "architectures": ["T5ForConditionalGeneration"]}))
    (bert / "model.safetensors").write_bytes(b"\0" * 64)
    line = _refused(tmp_path, "export", "--checkpoint", str(bert))
    assert "model_type 't5' is not supported" in line and str(bert) in line
    assert sorted(p.name for p in bert.iterdir()) == ["config.json", "model.safetensors"]  # the folder as it was
