"""Records and manifests are checked at the door: a value of the wrong type, range or size
is refused in one line naming it (`results import`, `run --program` with its manifest, before anything reaches the
device), and a record already stored that fails the check is skipped by reports with a warning naming its run."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest

from program.schema import MANIFEST_FIELDS, RECORD_FIELDS, manifest_problem
from program.manifest import ProgramManifest, sha256_file
from harness.store.db import ResultsStore
from harness.store.exchange import dumps
from harness.store.record import RunRecord
from tests.support.cli import one_error, run_harness
from tests.support.factories import rec


def test_the_schemas_name_every_field_of_their_dataclass():
    """A field added to RunRecord or ProgramManifest gets its rule here, or records of it pass unchecked."""
    assert set(RECORD_FIELDS) == {f.name for f in dataclasses.fields(RunRecord)}
    assert set(MANIFEST_FIELDS) == {f.name for f in dataclasses.fields(ProgramManifest)}


POISON = {  # field: value, as an imported (or hand-edited) record might carry them
    "seq_len-text": ("seq_len", "abc"),
    "seq_len-huge": ("seq_len", 10**30),
    "seq_len-true": ("seq_len", True),
    "latencies-text": ("latencies_ms", ["1.5", 2.0]),
    "latencies-negative": ("latencies_ms", [-1.0]),
    "latency-p50-text": ("latency", {"p50": "fast", "n": 3}),
    "memory-text": ("memory", {"peak_rss_mb": "8 MB"}),
    "memory-list": ("memory", [1, 2]),
    "accuracy-text": ("accuracy", {"value": "0.9", "n": 10}),
    "accuracy-string": ("accuracy", "good"),
    "manifest-program-bytes": ("manifest", {"program_bytes": "x"}),
    "manifest-recipe-list": ("manifest", {"recipe": ["a"]}),
    "manifest-seq-len": ("manifest", {"seq_len": "abc"}),
    "status-unknown": ("status", "great"),
    "threads-text": ("threads", "2"),
    "tags-list": ("tags", ["k"]),
    "flags-number": ("flags", [1]),
}


@pytest.mark.parametrize("field,value", POISON.values(), ids=POISON.keys())
def test_an_import_of_a_poisoned_record_is_refused_and_adds_nothing(tmp_path, field, value):
    """Imported `seq_len: "abc"` was stored, and every report (every format) then ended in a TypeError."""
    good, bad = rec("fp32", seed=1).to_dict(), rec("int8", seed=2).to_dict()
    bad[field] = value
    src = tmp_path / "runs.jsonl"
    src.write_text(dumps([]) + json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    results = tmp_path / "results"
    p = run_harness("--results", str(results), "results", "import", str(src))
    assert p.returncode == 2
    line = one_error(p)
    assert f"{src}:3" in line and bad["run_id"] in line and field in line and len(line) < 400, line
    assert not (results / "runs.sqlite").exists() or len(ResultsStore(results)) == 0  # not even the good one


@pytest.mark.parametrize("field,value", [("seq_len", "abc"), ("latencies_ms", ["1"]), ("memory", {"peak_rss_mb": "x"}),
                                         ("manifest", {"program_bytes": "x"}), ("accuracy", {"value": "x"})])
def test_a_stored_poisoned_record_is_skipped_by_every_report_with_a_warning(tmp_path, field, value):
    """A record written past the door (an older harness, a hand edit): reports skip it and name it; the others stay."""
    results = tmp_path / "results"
    store = ResultsStore(results)
    good, bad = rec("fp32", seed=1), rec("int8", seed=2)
    store.add_many([good, bad])
    d = bad.to_dict()
    d[field] = value
    con = sqlite3.connect(results / "runs.sqlite")
    con.execute("UPDATE runs SET record = ? WHERE run_id = ?", (json.dumps(d), bad.run_id))
    con.commit()
    con.close()
    for fmt in ("md", "csv", "json", "html"):
        out = tmp_path / f"report.{fmt}"
        p = run_harness("--results", str(results), "report", "--format", fmt, "--output", str(out))
        assert p.returncode == 0, (fmt, p.stderr)
        assert "Traceback" not in p.stderr
        assert f"warning: skipping run {bad.run_id}" in p.stderr and field in p.stderr, p.stderr
        assert good.run_id in out.read_text() or fmt in ("md", "csv")  # md/csv rows name the model, not the run
    p = run_harness("--results", str(results), "runs", "list")
    assert p.returncode == 0 and "Traceback" not in p.stderr and "2 runs" in p.stdout
    p = run_harness("--results", str(results), "compare", good.run_id, bad.run_id)
    assert p.returncode == 2 and bad.run_id in one_error(p)


@pytest.fixture(scope="module")
def program_with_manifest(tmp_path_factory, tiny):
    """The tiny program beside a manifest that `run` accepts (checked once below), to poison one field at a time."""
    import shutil

    program, _ = tiny
    folder = tmp_path_factory.mktemp("prog")
    pte = folder / "tiny.pte"
    shutil.copy(program, pte)
    manifest = {"name": "tiny", "model": "tiny", "head": "unknown", "recipe": "fp32", "seq_len": 8,
                "inputs": [{"name": "input_ids", "dtype": "int64", "shape": [1, 8]}], "outputs": ["logits"],
                "program_bytes": pte.stat().st_size, "program_sha256": sha256_file(pte), "vocab_size": 64,
                "random_weights": True}
    assert manifest_problem(manifest) is None
    return pte, manifest


def test_the_unpoisoned_manifest_runs(program_with_manifest, tmp_path):
    """The refusals below are of the poisoned field alone: the same manifest as it is runs and is stored."""
    pte, manifest = program_with_manifest
    pte.with_suffix(".json").write_text(json.dumps(manifest))
    p = run_harness("--results", str(tmp_path / "r"), "run", "--program", str(pte), "--iterations", "2", "--warmup", "0")
    assert p.returncode == 0, p.stderr
    [stored] = ResultsStore(tmp_path / "r").runs()
    assert stored.seq_len == 8 and stored.manifest["recipe"] == "fp32"


MANIFEST_POISON = {
    "seq_len-text": {"seq_len": "abc"},
    "seq_len-huge": {"seq_len": 1e30},
    "program_bytes-text": {"program_bytes": "x"},
    "recipe-list": {"recipe": ["a"]},
    "vocab-negative": {"vocab_size": -1},
    "vocab-huge": {"vocab_size": 1e30},
    "shape-text": {"inputs": [{"name": "input_ids", "dtype": "int64", "shape": [1, "16"]}]},
    "sha-null": {"program_sha256": None},
    "no-inputs": {"inputs": None},
    "over-1MiB": {"config": {"padding": "x" * (2 << 20)}},
    # consistent in itself, but not the program's own inputs: found on the device before, and blamed on the inputs
    "seq_len-not-the-programs": {"seq_len": 16, "inputs": [{"name": "input_ids", "dtype": "int64", "shape": [1, 16]}]},
    "seq_len-not-its-inputs": {"seq_len": 16},
    "dtype-not-the-programs": {"inputs": [{"name": "input_ids", "dtype": "int32", "shape": [1, 8]}]},
    "inputs-more-than-the-programs": {"inputs": [{"name": "a", "dtype": "int64", "shape": [1, 8]}] * 2},
}


@pytest.mark.parametrize("change", MANIFEST_POISON.values(), ids=MANIFEST_POISON.keys())
def test_a_poisoned_manifest_is_refused_before_the_device(program_with_manifest, tmp_path, change):
    """Each was an exit 0 that poisoned every report, a traceback after measuring (the record lost), or a failure
    on the device; now: exit 2 before anything is pushed, one line naming the manifest, nothing stored."""
    pte, manifest = program_with_manifest
    mpath = pte.with_suffix(".json")
    mpath.write_text(json.dumps({**manifest, **change}))
    results = tmp_path / "r"
    p = run_harness("--results", str(results), "run", "--program", str(pte), "--iterations", "2", "--warmup", "0")
    assert p.returncode == 2, (p.stdout, p.stderr)
    line = one_error(p)
    assert f"manifest {mpath}" in line and len(line) < 400, line
    assert "running on" not in p.stderr and "pushing" not in p.stderr  # nothing reached the device
    assert len(ResultsStore(results)) == 0


def test_the_direct_read_of_input_specs_matches_the_runtimes(tiny, tmp_path):
    """The manifest check reads input specs straight from the flatbuffer (milliseconds, not the runtime's seconds):
    it must say what ExecuTorch's own loader says, and a damaged file is a ValueError, never a crash."""
    from program import pte
    from program.pte_inputs import read_input_specs
    from tests.support.fixtures_programs import cached_tiny_program

    for path in (tiny[0], cached_tiny_program(seq_len=8, int8=True)[0]):
        runtime = [(s.dtype, list(s.shape)) for s in pte.input_specs(pte.inspect(path))]
        assert read_input_specs(path) == runtime == [("int64", [1, 8])]
    cut = tmp_path / "cut.pte"
    cut.write_bytes(tiny[0].read_bytes()[:200])
    with pytest.raises(ValueError):
        read_input_specs(cut)
