"""harness run --task FILE.json on a question-answering program, end to end: a checkpoint saved by transformers'
save_pretrained (no tokenizer files), exported at seq 64, run on the host and on emu-arm64; the device's start/end
logits scored with SQuAD F1 against the fp32 eager model's. Wrong task for the head and broken files: one line, exit 2,
nothing stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.run import measure
from harness.store.db import ResultsStore
from tests.support.tools import require_tool
from tests.support.factories import save_pretrained_checkpoint
from tests.support.paths import FIXTURES

DATA = FIXTURES
V1, V2 = DATA / "squad-tiny.json", DATA / "squad-v2-tiny.json"


@pytest.fixture(scope="module")
def qa_program(tmp_path_factory):
    """The checkpoint and its program live in the per-machine test cache (a re-run is a cache hit); runs do not."""
    from common.console import silence_libraries
    from harness.export.exporter import ExportRequest, export

    silence_libraries()
    root = Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness") / "test-programs" / "squad-qa"
    ckpt = root / "tiny-qa"
    if not ckpt.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            save_pretrained_checkpoint(Path(tmp) / "tiny-qa").rename(ckpt)
    res = export(ExportRequest(checkpoint=ckpt, seq_len=64, numerics_samples=8), root)
    return tmp_path_factory.mktemp("qa-results"), res


def _run(program, results, **kw):
    kw.setdefault("iterations", 2)
    return measure.run(measure.RunRequest.of(program=program, warmup=0, **kw), results)


@pytest.fixture(scope="module")
def host_run(qa_program):
    results, res = qa_program
    return _run(res.program, results, task=str(V1), samples=50)


def test_save_pretrained_checkpoint_exports_with_the_shipped_vocabulary(qa_program):
    _, res = qa_program
    m = res.manifest
    assert m.status == "ok" and m.head == "question_answering" and not m.random_weights
    assert m.tokenizer == "shipped:bert-base-uncased" and m.outputs == ["start_logits", "end_logits"]
    assert any("no tokenizer files: using the uncased BERT vocabulary" in n for n in res.notes)


def test_squad_f1_on_the_host_matches_the_fp32_reference(qa_program, host_run):
    rec = host_run
    assert rec.status != "failed", rec.error
    acc = rec.accuracy.to_json()  # the record's JSON, as the store and `results export` hold it
    assert acc["metric"] == "f1" and acc["task"] == "squad-tiny" and acc["squad_version"] == "1.1"
    assert acc["n"] == 9 and acc["windows"] > 9  # every question scored once, over all of its windows
    assert 0.0 <= acc["value"] <= 1.0 and 0.0 <= acc["exact_match"] <= acc["value"]
    # an fp32 program gives the eager model's answers: same predictions, same F1, the gate passes
    assert acc["agreement_fp32"] == 1.0 and acc["max_rel_logit_error"] < 1e-4
    assert acc["value"] == pytest.approx(acc["reference_value"]) and acc["gate"]["passed"]
    contexts = [p["context"] for a in json.loads(V1.read_text())["data"] for p in a["paragraphs"]]
    for s in acc["samples"]:
        assert s["prediction"] and any(s["prediction"] in c for c in contexts)  # spans of the context text
    assert ResultsStore(qa_program[0]).get(rec.run_id).accuracy.value == acc["value"]


def test_squad_v2_file_scores_unanswerable_questions(qa_program):
    results, res = qa_program
    acc = _run(res.program, results, task=str(V2), samples=50).accuracy.to_json()
    assert acc["squad_version"] == "2.0" and acc["n"] == 11
    assert acc["value"] == pytest.approx(acc["reference_value"])


def test_squad_f1_on_emulated_arm64_equals_the_hosts(qa_program, host_run):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    results, res = qa_program
    rec = _run(res.program, results, task=str(V1), samples=50, device="emu-arm64", iterations=1, timeout=600)
    assert rec.status != "failed", rec.error
    assert rec.emulated and rec.accuracy.agreement_fp32 == 1.0
    assert rec.accuracy.value == pytest.approx(host_run.accuracy.value)
    assert [s["prediction"] for s in rec.accuracy.samples] == [s["prediction"] for s in host_run.accuracy.samples]


def _cli(results: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), *args],
                          capture_output=True, text=True, timeout=120)


def _one_line_exit_2(p: subprocess.CompletedProcess, results: Path, *words: str) -> None:
    assert p.returncode == 2, p.stderr[-2000:]
    assert "Traceback" not in p.stderr + p.stdout
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]  # progress lines may precede it
    assert len(lines) == 1 and all(w in lines[0] for w in words), p.stderr
    assert not results.exists()  # nothing written


def test_wrong_task_for_the_head_and_broken_files_are_one_line(qa_program, tiny_export, tmp_path):
    _, res = qa_program
    p = _cli(tmp_path / "r1", "run", "--program", str(res.program), "--task", "rotten_tomatoes")
    _one_line_exit_2(p, tmp_path / "r1", "classification task", "--task squad")
    _, cls = tiny_export
    p = _cli(tmp_path / "r2", "run", "--program", str(cls.program), "--task", str(V1))
    _one_line_exit_2(p, tmp_path / "r2", "question answering", "--head question_answering")
    p = _cli(tmp_path / "r3", "run", "--model", "test-tiny", "--seq-len", "64", "--task", "squad")
    _one_line_exit_2(p, tmp_path / "r3", "--head question_answering")  # refused before any export
    doc = json.loads(V1.read_text())
    del doc["data"][1]["paragraphs"][0]["qas"][0]["id"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    p = _cli(tmp_path / "r4", "run", "--program", str(res.program), "--task", str(broken))
    _one_line_exit_2(p, tmp_path / "r4", "broken.json", "qas[0] has no 'id'")
