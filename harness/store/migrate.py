"""Older results stores, brought up to this schema in place (called inside the store's opening transaction).

v1 -> v2: runs gain model_id (what was measured, by name), timing (the preset their settings match, or "custom") and
campaign. v1 had no campaigns, so runs are put back into the invocations they most likely came from: consecutive runs
of one program on one device with the same timing settings, each started within CAMPAIGN_GAP_S of the previous one's
end (a `run --repeat N`), form one campaign named "v1-<first run's id>"; anything else starts its own. Every run is kept; a record this code cannot parse is left as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

from common.timing import LEGACY_PRESETS, timing_name
from harness.store.record import model_identity

CAMPAIGN_GAP_S = 300.0  # a `run --repeat N` or a demo (with an export between recipes) fits within it


def upgrade(con: sqlite3.Connection, found: int) -> None:
    """Bring a store of schema `found` to the current one; the caller owns the transaction."""
    if found < 2:
        _v1_to_v2(con)


def _time(stamp: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None


def _chain(d: dict) -> tuple:
    return tuple(str(d.get(k)) for k in ("device", "program_sha256", "runner", "threads", "affinity", "warmup",
                                         "iterations", "min_seconds"))


def _v1_to_v2(con: sqlite3.Connection) -> None:
    cols = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
    for col in ("model_id", "campaign", "timing"):
        if col not in cols:
            con.execute(f"ALTER TABLE runs ADD COLUMN {col} TEXT")
    con.execute("CREATE INDEX IF NOT EXISTS runs_by_campaign ON runs (campaign, created_at)")
    last: dict[tuple, tuple[str, dt.datetime | None]] = {}  # what ran where -> (campaign, when its last run ended)
    for run_id, text in con.execute("SELECT run_id, record FROM runs ORDER BY created_at, run_id").fetchall():
        try:
            d = json.loads(text)
        except ValueError:
            continue
        if not isinstance(d, dict):
            continue
        d["model_id"] = d.get("model_id") or model_identity(d.get("manifest"), d.get("model"), d.get("program_sha256"))
        d["timing"] = d.get("timing") or timing_name(d.get("warmup"), d.get("iterations"), d.get("min_seconds"),
                                                     presets=LEGACY_PRESETS)  # v1 records predate the time floors
        if not d.get("campaign"):
            start = _time(d.get("created_at"))
            prev = last.get(_chain(d))
            close = prev and prev[1] and start and 0 <= (start - prev[1]).total_seconds() <= CAMPAIGN_GAP_S
            d["campaign"] = prev[0] if close else f"v1-{run_id}"
        last[_chain(d)] = (d["campaign"], _time(d.get("finished_at")) or _time(d.get("created_at")))
        con.execute("UPDATE runs SET model_id = ?, campaign = ?, timing = ?, record = ? WHERE run_id = ?",
                    (d["model_id"], d["campaign"], d["timing"], json.dumps(d), run_id))
