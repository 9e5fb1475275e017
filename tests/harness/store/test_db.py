"""ResultsStore: round trip, filters, prefixes, atomicity, schema version, damaged files, two writer processes."""

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from common.errors import BadInput
from harness.store.record import SCHEMA_VERSION, RunRecord
from harness.store.db import ResultsStore, Selection
from tests.support.factories import make_record
from tests.support.paths import REPO


def test_round_trip_keeps_every_field(tmp_path):
    store = ResultsStore(tmp_path)
    rec = make_record("r1", accuracy={"metric": "accuracy", "value": 0.5}, flags=["high_cv"], tags={"k": [1, 2]})
    store.add(rec)
    assert store.get("r1") == rec
    assert (tmp_path / "runs.sqlite").is_file()
    assert len(store) == 1


def test_filters_and_order(tmp_path):
    store = ResultsStore(tmp_path)
    store.add(make_record("c", recipe="int8", seed=3))
    store.add(make_record("a", seed=1))
    store.add(make_record("b", device="pixel8pro", status="failed", seed=2))
    assert [r.run_id for r in store.runs()] == ["a", "b", "c"]  # oldest first
    assert [r.run_id for r in store.runs(Selection(recipe="int8"))] == ["c"]
    assert [r.run_id for r in store.runs(Selection(device="pixel8pro", status="failed"))] == ["b"]
    assert [r.run_id for r in store.runs(Selection(model="mobilebert-tiny", recipe="fp32", device="host"))] == ["a"]
    assert [r.run_id for r in store.runs(Selection(ids=["a", "c", "zz"]))] == ["a", "c"]
    assert store.runs(Selection(ids=[])) == []


def test_reading_a_missing_store_creates_nothing(tmp_path):
    store = ResultsStore(tmp_path / "nope")
    assert store.runs() == [] and len(store) == 0
    assert not (tmp_path / "nope").exists()
    with pytest.raises(BadInput, match="no runs yet"):
        store.get("abc")


def test_get_by_unique_prefix_and_errors(tmp_path):
    store = ResultsStore(tmp_path)
    for rid in ("20261124-aaaa", "20261124-aabb", "20261124-b_cc"):
        store.add(make_record(rid))
    assert store.get("20261124-b").run_id == "20261124-b_cc"
    assert store.get("20261124-aab").run_id == "20261124-aabb"
    with pytest.raises(BadInput, match="ambiguous: 20261124-aaaa, 20261124-aabb"):
        store.get("20261124-a")
    with pytest.raises(BadInput, match="no run 'zzz'"):
        store.get("zzz")
    with pytest.raises(BadInput, match="no run '20261124-_'"):  # _ is a literal, not a wildcard
        store.get("20261124-_")


def test_delete(tmp_path):
    store = ResultsStore(tmp_path)
    store.add(make_record("keep"))
    store.add(make_record("gone-123"))
    assert store.delete("gone") == "gone-123"
    assert [r.run_id for r in store.runs()] == ["keep"]
    with pytest.raises(BadInput):
        store.delete("gone")


def test_duplicate_id_is_refused_unless_replacing(tmp_path):
    store = ResultsStore(tmp_path)
    store.add(make_record("r1"))
    with pytest.raises(BadInput, match="r1 is already stored"):
        store.add(make_record("r1", status="failed"))
    assert store.get("r1").status == "ok"
    store.add(make_record("r1", status="invalid"), replace=True)
    assert store.get("r1").status == "invalid" and len(store) == 1


def test_a_failing_add_leaves_earlier_rows_and_writes_nothing(tmp_path):
    store = ResultsStore(tmp_path)
    store.add(make_record("first"))
    with pytest.raises(TypeError):
        store.add(make_record("bad", tags={"x": object()}))  # not JSON-serialisable
    with pytest.raises(BadInput, match="device is None, not text; the measurement is kept in"):
        store.add(RunRecord(run_id="nodev", created_at="t", status="ok", device=None))  # refused by the schema
    assert [r.run_id for r in store.runs()] == ["first"]
    con = sqlite3.connect(tmp_path / "runs.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_newer_schema_asks_to_upgrade(tmp_path):
    ResultsStore(tmp_path).add(make_record("r1"))
    con = sqlite3.connect(tmp_path / "runs.sqlite")
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(BadInput, match=rf"runs.sqlite has results schema version {SCHEMA_VERSION + 1}.*upgrade harness"):
        ResultsStore(tmp_path).runs()


def test_a_stored_schema_version_is_written(tmp_path):
    ResultsStore(tmp_path).add(make_record("r1"))
    con = sqlite3.connect(tmp_path / "runs.sqlite")
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)


@pytest.mark.parametrize("content", [b"this is not sqlite at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_damaged_file_is_named(tmp_path, content):
    (tmp_path / "runs.sqlite").write_bytes(content)
    with pytest.raises(BadInput, match=r"runs.sqlite is not a readable harness results database"):
        ResultsStore(tmp_path).runs()
    with pytest.raises(BadInput, match=r"runs.sqlite"):
        ResultsStore(tmp_path).add(make_record("r1"))


def test_another_programs_sqlite_file_is_not_written_into(tmp_path):
    con = sqlite3.connect(tmp_path / "runs.sqlite")
    con.execute("CREATE TABLE runs (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(BadInput, match=r"runs.sqlite is not a readable harness results database \(an SQLite file of"):
        ResultsStore(tmp_path).add(make_record("r1"))


def test_results_path_that_is_a_file(tmp_path, monkeypatch):
    """Refused in one line, and the measurement is kept in the temp folder (here the test's own, not the machine's:
    every suite run used to leave one recovery file in /tmp)."""
    import tempfile

    spare = tmp_path / "spare"
    spare.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    (tmp_path / "f").write_text("x")
    with pytest.raises(BadInput, match="cannot create the results directory|is a file") as e:
        ResultsStore(tmp_path / "f").add(make_record("r1"))
    [kept] = spare.glob("runs.recovered-*.jsonl")
    assert str(kept) in str(e.value) and '"run_id": "r1"' in kept.read_text()


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from tests.support.factories import make_record
    from harness.store.db import ResultsStore, Selection
    store = ResultsStore(Path(sys.argv[1]))
    for i in range(int(sys.argv[3])):
        store.add(make_record(f"{{sys.argv[2]}}-{{i:03d}}", seed=i))
        store.runs(Selection(recipe="fp32"))  # readers interleave with the other writer too
    """
)


def test_two_writer_processes_do_not_corrupt(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=str(REPO)))
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / "res"), name, "40"], stderr=subprocess.PIPE)
        for name in ("p1", "p2")
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    runs = ResultsStore(tmp_path / "res").runs()
    assert len(runs) == 80
    assert {r.run_id.split("-")[0] for r in runs} == {"p1", "p2"}
    con = sqlite3.connect(tmp_path / "res" / "runs.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from harness.store.db import ResultsStore, Selection
    store = ResultsStore(Path(sys.argv[1]))
    with store.db.connect(write=True) as con:
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO runs (run_id, created_at, status, device, emulated, record) "
                    "VALUES ('half', 't', 'ok', 'host', 0, '{{}}')")
        print("inside", flush=True)
        time.sleep(60)
    """
)


def test_a_writer_killed_mid_transaction_leaves_the_store_usable(tmp_path):
    store = ResultsStore(tmp_path)
    store.add(make_record("before"))
    script = tmp_path / "killed.py"
    script.write_text(KILLED_WRITER.format(repo=str(REPO)))
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "inside"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    store.add(make_record("after"))  # the dead writer's lock is gone
    assert {r.run_id for r in store.runs()} == {"before", "after"}  # and not the half-written one
    con = sqlite3.connect(tmp_path / "runs.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
