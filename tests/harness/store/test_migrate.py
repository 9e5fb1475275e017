"""A store written by the v1 harness (tests/fixtures/store-v1.sqlite, made by that release's `harness run`) opens,
migrates in place in one transaction, keeps every run, and then reports what v1 could not tell apart."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from harness.reports.table import build_rows
from harness.store import migrate
from harness.store.db import ResultsStore
from harness.store.record import SCHEMA_VERSION
from tests.support.paths import FIXTURES

V1 = FIXTURES / "store-v1.sqlite"


@pytest.fixture
def v1_store(tmp_path) -> Path:
    shutil.copy(V1, tmp_path / "runs.sqlite")
    return tmp_path


def _version(root: Path) -> int:
    con = sqlite3.connect(root / "runs.sqlite")
    try:
        return int(con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
    finally:
        con.close()


def test_v1_store_migrates_and_keeps_every_run(v1_store):
    assert _version(v1_store) == 1
    before = sqlite3.connect(v1_store / "runs.sqlite").execute("SELECT run_id, status FROM runs").fetchall()
    runs = ResultsStore(v1_store).runs()
    assert _version(v1_store) == SCHEMA_VERSION
    assert sorted((r.run_id, r.status) for r in runs) == sorted(before) and len(runs) == 7
    assert all(r.model_id and r.campaign and r.timing for r in runs)
    # the two checkpoints v1 recorded as model "checkpoint" are two models now
    ckpt = {r.model_id for r in runs if r.model == "checkpoint"}
    assert len(ckpt) == 2 and all("@" in m and m.endswith(" cls2") for m in ckpt)
    # the `--repeat 2` pair is one campaign; the single int8 run and the --timing quick int8 run are not pooled
    fp32 = [r for r in runs if r.model == "test-tiny" and r.recipe == "fp32" and r.status == "ok"]
    assert len(fp32) == 2 and fp32[0].campaign == fp32[1].campaign
    int8 = [r for r in runs if r.recipe == "int8"]
    assert len({r.campaign for r in int8}) == 2 and {r.timing for r in int8} == {"custom", "quick"}
    # opening again is a no-op, and new runs go in beside the migrated ones
    assert [r.run_id for r in ResultsStore(v1_store).runs()] == [r.run_id for r in runs]


def test_report_of_a_migrated_store_keeps_unlike_runs_apart(v1_store):
    rows = [r for r in build_rows(ResultsStore(v1_store).runs()) if r["status"] != "failed"]
    models = {r["model"] for r in rows}
    assert len([m for m in models if "@" in m]) == 2  # one row per checkpoint, not one "checkpoint" row
    int8 = [r for r in rows if r["recipe"] == "int8"]
    assert sorted(r["timing"] for r in int8) == ["custom", "quick"] and all(r["n_runs"] == 1 for r in int8)
    for r in rows:  # checkpoints are trained weights; presets random; no row mixes them
        assert r["weights"] == ("from checkpoint" if "@" in r["model"] else "random")


def test_a_failed_migration_changes_nothing(v1_store, monkeypatch):
    real = migrate._v1_to_v2

    def half_then_fail(con):
        real(con)  # every row rewritten inside the transaction...
        raise RuntimeError("power cut")  # ...then the process dies before COMMIT

    monkeypatch.setattr(migrate, "_v1_to_v2", half_then_fail)
    with pytest.raises(RuntimeError, match="power cut"):
        ResultsStore(v1_store).runs()
    assert _version(v1_store) == 1
    cols = {r[1] for r in sqlite3.connect(v1_store / "runs.sqlite").execute("PRAGMA table_info(runs)")}
    assert "campaign" not in cols
    monkeypatch.undo()
    assert len(ResultsStore(v1_store).runs()) == 7  # and the next open migrates it whole
