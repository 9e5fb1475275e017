"""The results store under a hostile environment, for real: a read-only folder and a full disk, made with mounts in
a private mount namespace (unshare -m, as root), never by patching sqlite."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess

import pytest

from harness.store.db import ResultsStore
from tests.support.cli import harness
from tests.support.factories import rec
from tests.support.mounts import in_namespace, read_only

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root and unshare for private mounts")


@pytest.fixture
def store_dir(tmp_path):
    root = tmp_path / "results"
    store = ResultsStore(root)
    store.add(rec("fp32", ms=30.0, seed=1, campaign="c"))
    store.add(rec("int8", ms=12.0, seed=2, campaign="c"))
    return root


def test_report_compare_and_runs_list_work_on_a_read_only_store(store_dir):
    ids = [r.run_id for r in ResultsStore(store_dir).runs()]
    for args in (["report"], ["runs", "list"], ["compare", *ids], ["report", "--format", "csv"]):
        p = in_namespace(read_only(store_dir), *harness("--results", str(store_dir), *args))
        assert p.returncode == 0, (args, p.stderr)
        assert "Traceback" not in p.stderr
    p = in_namespace(read_only(store_dir), *harness("--results", str(store_dir), "runs", "rm", "--campaign", "c"))
    assert p.returncode == 2 and "read-only" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_a_run_into_a_read_only_store_is_refused_before_it_measures(store_dir, tiny):
    program, _ = tiny  # no manifest: refused before it is inspected too
    p = in_namespace(read_only(store_dir), *harness("--results", str(store_dir), "run", "--program", str(program),
                                                    "--iterations", "2", "--warmup", "0"))
    assert p.returncode == 2 and "Traceback" not in p.stderr + p.stdout
    assert "read-only" in p.stderr and str(store_dir) in p.stderr
    assert "running" not in p.stdout  # refused before the runner started


def test_a_full_disk_keeps_the_measurement_in_a_recovery_file(tmp_path, tiny_export):
    program = tiny_export[1].program  # with a manifest: no inspection on the full disk
    full = tmp_path / "full"
    full.mkdir()
    spare = tmp_path / "tmp"
    spare.mkdir()
    fill = f"mount -t tmpfs -o size=256k tmpfs {full} && (head -c 10M /dev/zero > {full}/filler || true)"
    p = in_namespace(fill, *harness("--results", str(full), "run", "--program", str(program), "--iterations", "3",
                                    "--warmup", "0"), env={"TMPDIR": str(spare)})
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr + p.stdout
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]  # besides the progress lines
    assert len(err) == 1 and "cannot write the results store" in err[0] and "harness results import" in err[0]
    [kept] = list(spare.glob("runs.recovered-*.jsonl"))  # the tmpfs went away with the namespace; this did not
    [_, line] = kept.read_text().splitlines()  # the header, then the run
    record = json.loads(line)
    # at least the 3 iterations asked for: the timing preset's time floor (issue #25) may keep more
    assert record["status"] in ("ok", "invalid") and len(record["latencies_ms"]) >= 3 and str(kept) in err[0]
    p = subprocess.run(harness("--results", str(tmp_path / "later"), "results", "import", str(kept)),
                       capture_output=True, text=True)  # the command the message gives, once there is space
    assert p.returncode == 0, p.stderr
    assert [r.run_id for r in ResultsStore(tmp_path / "later").runs()] == [record["run_id"]]


def test_one_unreadable_record_is_skipped_with_a_warning(store_dir):
    import sqlite3

    con = sqlite3.connect(store_dir / "runs.sqlite")
    bad = con.execute("SELECT run_id FROM runs LIMIT 1").fetchone()[0]
    con.execute("UPDATE runs SET record = '{broken' WHERE run_id = ?", (bad,))
    con.commit()
    con.close()
    p = subprocess.run(harness("--results", str(store_dir), "report"), capture_output=True, text=True)
    assert p.returncode == 0 and f"skipping run {bad}" in p.stderr and "1 run" in p.stdout


def test_a_report_reads_a_store_on_a_full_disk(store_dir, tmp_path):
    """A full disk cannot take WAL's -shm file: report used to fail until space was freed; reading needs no space."""
    full = tmp_path / "full"
    full.mkdir()
    fill = (f"mount -t tmpfs -o size=512k tmpfs {full} && cp -r {store_dir}/. {full}/ && "
            f"(head -c 10M /dev/zero > {full}/filler 2>/dev/null || true)")
    for args in (["report"], ["runs", "list"]):
        p = in_namespace(fill, *harness("--results", str(full), *args))
        assert p.returncode == 0 and "Traceback" not in p.stderr, (args, p.stderr)
        assert "fp32" in p.stdout and "int8" in p.stdout


def test_an_export_onto_a_full_disk_is_one_line_and_leaves_no_partial_file(tiny_export, tmp_path):
    """The serializer's `OSError: [Errno 28]` was a traceback. The program comes from the cache (no lowering here):
    publishing it into a full --out fails, and nothing half-written stays behind."""
    results, _ = tiny_export
    out = tmp_path / "out"
    out.mkdir()
    fill = f"mount -t tmpfs -o size=64k tmpfs {out} && (head -c 10M /dev/zero > {out}/filler 2>/dev/null || true)"
    export = shlex.join(harness("--results", str(results), "export", "--model", "test-tiny", "--seq-len", "16",
                                "--numerics-samples", "16", "--out", str(out)))
    p = in_namespace(fill, "sh", "-c", f"{export}; rc=$?; ls -a {out} > {tmp_path}/left; exit $rc")
    assert p.returncode == 2 and "Traceback" not in p.stderr + p.stdout, p.stderr
    [err] = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert "No space left on device" in err and str(out) in err
    assert (tmp_path / "left").read_text().split() == [".", "..", "filler"]  # no .pte, no temporary


@pytest.mark.parametrize("what", ["export", "report"])
def test_read_only_output_folders_are_one_line_before_any_work(what, store_dir, tmp_path):
    """Every write, not only the store's: the program cache of an export (checked before lowering) and a report's
    --output folder."""
    out = tmp_path / "ro"
    out.mkdir()
    if what == "export":
        args = ["--results", str(out), "export", "--model", "test-tiny", "--seq-len", "16", "--numerics-task", "none"]
    else:
        args = ["--results", str(store_dir), "report", "--format", "html", "--output", str(out / "r.html")]
    p = in_namespace(read_only(out), *harness(*args))
    assert p.returncode == 2 and "Traceback" not in p.stderr + p.stdout, p.stderr
    [err] = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert "read-only" in err and str(out) in err
    assert not any(out.iterdir())
