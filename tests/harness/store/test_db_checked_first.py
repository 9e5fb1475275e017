"""The store is a checked file at a literal path: a broken store is refused before the
runner starts, a read-only store's path is read as a path (never as a URI), tag keys of any text select their
runs, and a 10,000-character name is not echoed back whole."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys

import pytest

from harness.store.db import ResultsStore, Selection
from tests.support.cli import one_error, run_harness
from tests.support.factories import rec
from tests.support.mounts import in_namespace, read_only


def _directory(path):
    path.mkdir()


def _garbage(path):
    path.write_bytes(b"not a database, " * 512)


def _newer_schema(path):
    ResultsStore(path.parent).add(rec("fp32", seed=1))
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def _other_tables(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    con.close()


BROKEN = {"a-directory": _directory, "garbage": _garbage, "a-newer-schema": _newer_schema,
          "another-programs-sqlite": _other_tables}


@pytest.mark.parametrize("make", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_store_is_refused_before_the_runner_starts(tmp_path, tiny, make):
    """Each measured for all of --min-seconds, then exited 2 when the record could not be saved."""
    program, _ = tiny
    results = tmp_path / "results"
    results.mkdir()
    make(results / "runs.sqlite")
    p = run_harness("--results", str(results), "run", "--program", str(program), "--min-seconds", "30")
    assert p.returncode == 2, p.stderr
    line = one_error(p)
    assert str(results / "runs.sqlite") in line
    assert "running on" not in p.stderr and "pushing" not in p.stderr  # refused before anything reached the device


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and unshare for a read-only bind mount (root may write any file otherwise)")
@pytest.mark.parametrize("name", ["r%41", "r#x", "r?y", "r%23"])
def test_a_read_only_store_path_is_a_path_not_a_uri(tmp_path, name):
    """The read-only store is opened through SQLite's file: URI: unescaped, "%41" read the sibling store rA (1 run
    listed instead of 2) and "#" or "?" cut the path ("no such table: meta")."""
    base = tmp_path / "base"
    ResultsStore(base / "rA").add(rec("fp32", seed=1))
    ResultsStore(base / "r#").add(rec("fp32", seed=2))
    store = ResultsStore(base / name)
    store.add_many([rec("fp32", seed=3), rec("int8", seed=4)])
    ids = [r.run_id for r in store.runs()]
    p = in_namespace(read_only(base), sys.executable, "-m", "harness.cli", "--results", str(base / name),
                     "runs", "list")
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert "2 runs" in p.stdout and all(i in p.stdout for i in ids), p.stdout


@pytest.mark.parametrize("key", ["é", 'say"what', "日本", "a.b", "plain"])
def test_a_tag_key_of_any_text_selects_its_runs(tmp_path, key):
    """Keys with non-ASCII characters or a double quote were stored but never selectable ("no runs tagged")."""
    store = ResultsStore(tmp_path / "r")
    tagged, other = rec("fp32", seed=1, tags={key: "yes"}), rec("int8", seed=2, tags={"other": "yes"})
    store.add_many([tagged, other])
    sel = Selection(tags={key: "yes"})
    store.check_selection(sel)
    assert [r.run_id for r in store.runs(selection=sel)] == [tagged.run_id]
    assert [s["run_id"] for s in store.summaries(sel)] == [tagged.run_id]
    p = run_harness("--results", str(tmp_path / "r"), "runs", "list", "--tag", f"{key}=yes")
    assert p.returncode == 0 and tagged.run_id in p.stdout and other.run_id not in p.stdout, p.stderr
    p = run_harness("--results", str(tmp_path / "r"), "runs", "rm", "--tag", f"{key}=yes")
    assert p.returncode == 0, p.stderr
    assert [r.run_id for r in store.runs()] == [other.run_id]


@pytest.mark.parametrize("verb", ["run", "report", "compare"])
def test_a_10000_character_name_is_not_echoed_whole(tmp_path, tiny, verb):
    long = "é" * 10_000
    ResultsStore(tmp_path / "r").add(rec("fp32", seed=1, campaign="c"))
    args = {"run": ["run", "--program", str(tiny[0]), "--campaign", long],
            "report": ["report", "--campaign", long], "compare": ["compare", long, "c"]}[verb]
    p = run_harness("--results", str(tmp_path / "r"), *args)
    assert p.returncode == 2
    line = one_error(p)
    assert len(line) < 400 and "10,0" in line, line  # cut, and says how long it was
