"""A disk that fills while a run measures: the record lands in the store or in a recovery file,
never in a traceback. Real mounts (a 2 MB tmpfs in a private mount namespace, as root) filled by a real process
while the real native runner is timing; deletes and imports onto a full disk are one line and change nothing."""

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
from tests.support.mounts import in_namespace

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root and unshare to mount a tmpfs in a private mount namespace")


def _store_with_two_runs(root):
    store = ResultsStore(root)
    store.add(rec("fp32", ms=30.0, seed=1, campaign="c"))
    store.add(rec("int8", ms=12.0, seed=2, campaign="c"))
    return store


def _errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]  # besides the progress lines


def fill(folder, leave: int) -> str:
    """Shell: fill the filesystem of `folder` until `leave` bytes are free (tmpfs counts whole 4 KiB pages)."""
    return (f"avail=$(df --output=avail -B1 {folder} | tail -1); "
            f"head -c $((avail - {leave})) /dev/zero > {folder}/filler 2>/dev/null || true")


# no byte left: the store cannot even be opened to save; 40 KiB left: it opens (its 32 KiB -shm file fits) and
# the record's pages do not fit in the write-ahead log, so SQLite fails the INSERT and rolls back by itself
LEFT = {"full": 0, "nearly-full": 40 << 10}


@pytest.mark.parametrize("left", LEFT.values(), ids=LEFT.keys())
def test_a_disk_that_fills_while_the_runner_measures_keeps_the_measurement(tmp_path, tiny, left):
    """The disk is free when the run starts (so every check before measuring passes) and fills once the runner
    reports its timed loop, --min-seconds before the record is saved. SQLite rolls back on "database or disk is
    full" by itself; the store's own ROLLBACK then failed ("no transaction is active"): a traceback, exit 1, the
    measurement gone. A recovery file that did not fit beside the store was left there half-written."""
    program, _ = tiny
    seed = tmp_path / "seed"
    _store_with_two_runs(seed)
    full, spare = tmp_path / "full", tmp_path / "tmp"
    full.mkdir()
    spare.mkdir()
    err, out = tmp_path / "err", tmp_path / "out"
    run = shlex.join(harness("--results", str(full), "run", "--program", str(program), "--iterations", "2",
                             "--warmup", "0", "--min-seconds", "8"))
    script = (f"mount -t tmpfs -o size=2m tmpfs {full} && cp {seed}/runs.sqlite {full}/ && "
              f"{{ {run} > {out} 2> {err} & }} && pid=$! && "
              # the runner's first progress line of its timed loop: from here it measures for --min-seconds
              f"until grep -q ': timing' {err} || ! kill -0 $pid 2>/dev/null; do sleep 0.1; done; "
              f"{fill(full, left)}; "
              f"wait $pid; rc=$?; ls -a {full} > {tmp_path}/left; exit $rc")
    p = in_namespace("true", "sh", "-c", script, env={"TMPDIR": str(spare)})
    stderr, stdout = err.read_text(), out.read_text()
    assert ": timing" in stderr, stderr  # the disk filled during the timed loop, not before the run
    assert p.returncode == 2, (p.returncode, stdout, stderr)
    assert "Traceback" not in stderr + stdout + p.stderr
    [line] = _errors(stderr)
    assert "cannot write the results store" in line and "harness results import" in line
    [kept] = list(spare.glob("runs.recovered-*.jsonl"))  # the tmpfs went away with the namespace; this did not
    assert str(kept) in line
    [_, text] = kept.read_text().splitlines()  # the header, then the run
    record = json.loads(text)
    assert record["status"] in ("ok", "invalid") and record["latencies_ms"] and record["min_seconds"] == 8
    assert not [n for n in (tmp_path / "left").read_text().split() if n.startswith("runs.recovered")]  # no partial
    p = subprocess.run(harness("--results", str(tmp_path / "later"), "results", "import", str(kept)),
                       capture_output=True, text=True)  # the command the message gives, once there is space
    assert p.returncode == 0, p.stderr
    assert [r.run_id for r in ResultsStore(tmp_path / "later").runs()] == [record["run_id"]]


def _on_a_full_disk(tmp_path, *args: str, after: tuple[str, ...] = ("runs", "list")):
    """Run harness ARGS on a copy of a two-run store in a nearly full tmpfs, then (space freed) `after` on it."""
    seed = tmp_path / "seed"
    _store_with_two_runs(seed)
    full = tmp_path / "full"
    full.mkdir()
    first = shlex.join(harness("--results", str(full), *args))
    then = shlex.join(harness("--results", str(full), *after))
    script = (f"mount -t tmpfs -o size=2m tmpfs {full} && cp {seed}/runs.sqlite {full}/ && "
              f"{fill(full, LEFT['nearly-full'])} && "
              f"{{ {first}; echo \"rc=$?\"; }} && rm {full}/filler && {then}")
    spare = tmp_path / "tmp"
    spare.mkdir(exist_ok=True)
    return in_namespace("true", "sh", "-c", script, env={"TMPDIR": str(spare)})


def test_deleting_runs_on_a_full_disk_is_one_line_and_deletes_nothing(tmp_path):
    """delete_where rolled back a transaction SQLite had already ended: "cannot rollback", a traceback."""
    p = _on_a_full_disk(tmp_path, "runs", "rm", "--campaign", "c")
    assert "rc=2" in p.stdout and "Traceback" not in p.stderr + p.stdout, (p.stdout, p.stderr)
    [line] = _errors(p.stderr)
    assert str(tmp_path / "full" / "runs.sqlite") in line
    assert "2 runs" in p.stdout  # listed afterwards, space freed: both still there


def test_importing_onto_a_full_disk_is_one_line_and_adds_nothing(tmp_path):
    src = tmp_path / "src"
    ResultsStore(src).add(rec("fp32", ms=5.0, seed=9, campaign="other"))
    exported = tmp_path / "runs.jsonl"
    subprocess.run(harness("--results", str(src), "results", "export", "--output", str(exported)), check=True,
                   capture_output=True)
    p = _on_a_full_disk(tmp_path, "results", "import", str(exported))
    assert "rc=2" in p.stdout and "Traceback" not in p.stderr + p.stdout, (p.stdout, p.stderr)
    [line] = _errors(p.stderr)
    assert "cannot write the results store" in line
    assert "2 runs" in p.stdout  # the import added nothing
