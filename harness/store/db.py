"""The results store: every RunRecord as one row of root/runs.sqlite, and the ways to find them again.

Filtered fields get their own columns; the whole record is kept as JSON beside them, so a newer harness can read
fields this schema never indexed. The store owns only runs.sqlite: root/programs and root/reports belong to others.
Its seams are modules of their own: the database (harness/store/database.py: connection, schema, migration, the one
transaction helper), the selection (selection.py: the one filter API) and the summary cache (summary_cache.py).
Nothing here prints: what a reader should be told (a record it skipped) comes back as `warnings` on the result.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

from common.errors import BadInput, StoreError
from program.schema import MAX_RECORD_BYTES, record_problem, shown
from harness.store.database import DB_NAME, Database, dumps, loads, transaction
from harness.store.record import RunRecord
from harness.store.selection import TAGS_OF_RUN, Selection, listing, parse_when
from harness.store.summary_cache import SummaryCache

__all__ = ["DB_NAME", "ResultsStore", "Selection", "SummaryCache", "Found", "parse_when", "transaction"]

_COLUMNS = ("run_id", "created_at", "status", "model", "recipe", "device", "seq_len", "program_sha256", "runner",
            "model_id", "campaign", "timing")


class _AlreadyStored(BadInput):
    """A run id the store holds already: the caller's mistake, not a write to keep in a recovery file."""


class Found(list):
    """What a read found (a list), with the warnings its reader should show: records it could not read, one line
    each. The commands print them; the store never does."""

    def __init__(self, items=(), warnings: list[str] | None = None):
        super().__init__(items)
        self.warnings = list(warnings or [])


class ResultsStore:
    """RunRecords in root/runs.sqlite. Reading a store that does not exist yet gives no runs, and creates nothing."""

    def __init__(self, root: Path):
        self.db = Database(root)
        self.root, self.path = self.db.root, self.db.path

    def check_writable(self) -> None:
        """Before a run: a store that cannot take its record is an error now, not after minutes of measuring."""
        self.db.check_writable()

    def read_only(self) -> bool:
        """True when this process may read the store but not write it (its file or folder is not writable)."""
        return self.db.read_only()

    # -- writing ------------------------------------------------------------------------------------------------

    def add(self, record: RunRecord, replace: bool = False) -> None:
        """Store one record in one transaction; replace=True overwrites a stored run with the same id."""
        self.add_many([record], replace=replace)

    def add_many(self, records: list[RunRecord], replace: bool = False) -> None:
        """Store records in one transaction: all of them, or (on any error) none."""
        for record in records:
            if not isinstance(record, RunRecord):
                raise TypeError(f"ResultsStore.add takes a RunRecord, not {type(record).__name__}")
        # checked and serialised before touching the db: a bad record writes nothing, and its measurement is kept.
        # One to_dict per record: an interrupted run's 100,000 samples are copied once, not once per step.
        dicts = [record.to_dict() for record in records]
        for record, d in zip(records, dicts):
            problem = record_problem(d)
            if problem:
                raise BadInput(f"run {shown(record.run_id)} cannot be stored: {problem}; "
                               f"{self._recover(records)}")
        try:
            values = [[getattr(r, c) for c in _COLUMNS] + [int(bool(r.emulated)), dumps(d)]
                      for r, d in zip(records, dicts)]
        except TypeError as e:  # orjson: a value JSON cannot hold (an integer past 64 bits, an object)
            raise BadInput(f"a run cannot be stored: {e}; {self._recover(records)}") from None
        try:
            self._insert(records, values, replace)
        except _AlreadyStored:
            raise
        except StoreError as e:
            raise StoreError(f"{e}; {self._recover(records)}") from None
        except (BadInput, sqlite3.Error, OverflowError) as e:
            # anything else SQLite says while saving (a damaged file, a lock held past the timeout): never lost
            raise StoreError(f"cannot write the results store {self.path}: {e}; {self._recover(records)}") from None

    def _recover(self, records: list[RunRecord]) -> str:
        """Keep records the store could not take in a JSON-lines file (beside the store, else in the temp folder);
        returns where, as a sentence. `harness results import FILE` adds them once the store is writable."""
        import tempfile

        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        from harness.store.exchange import dumps

        text = dumps(records)
        for folder in (self.root, Path(tempfile.gettempdir())):
            path = folder / f"runs.recovered-{stamp}-{os.getpid()}.jsonl"
            try:
                with open(path, "x", encoding="utf-8") as f:
                    f.write(text)
                return f"the measurement is kept in {path} (add it later: harness results import {path})"
            except FileExistsError:
                continue
            except OSError:  # a full disk takes the name but not the text: no partial file is left behind
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass
                continue
        return f"nowhere could keep the measurement, so here it is: {dumps([r.to_dict() for r in records])}"

    def _insert(self, records: list[RunRecord], values: list[list], replace: bool) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        sql = (f"{verb} INTO runs ({', '.join(_COLUMNS)}, emulated, record) "
               f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})")
        with self.db.connect(write=True) as con, transaction(con):
            for record, row in zip(records, values):
                try:
                    con.execute(sql, row)
                except sqlite3.IntegrityError as e:
                    if "UNIQUE" not in str(e):
                        raise  # a record missing a required field is the caller's bug
                    raise _AlreadyStored(f"run {record.run_id} is already stored in {self.path}") from None

    def delete(self, run_id: str) -> str:
        """Delete one run given its id or a unique prefix; returns the full id."""
        full = self.get(run_id).run_id
        with self.db.writing("delete from"), self.db.connect(write=True) as con, transaction(con):
            con.execute("DELETE FROM runs WHERE run_id = ?", (full,))
        return full

    # -- reading ------------------------------------------------------------------------------------------------

    def runs(self, selection: Selection | None = None) -> Found:
        """Stored runs matching every field of the selection (all runs without one), oldest first; `warnings` name
        the ones whose stored record could not be read (skipped: one bad row never stops a report)."""
        sel = selection or Selection()
        if not self.path.exists() or (sel.ids is not None and not sel.ids):
            return Found()
        clause, args = sel.clause()
        with self.db.connect(write=False) as con:
            rows = con.execute(f"SELECT run_id, record FROM runs{clause} ORDER BY created_at, run_id", args).fetchall()
        return _parsed(rows)

    def summaries(self, selection: Selection | None = None) -> Found:
        """The indexed columns plus p50 and tags of the selected runs, oldest first, without parsing whole records
        (`harness runs list` on 10,000 runs)."""
        if not self.path.exists():
            return []
        clause, args = (selection or Selection()).clause()
        cols = ["run_id", "created_at", "campaign", "status", "model", "model_id", "recipe", "device", "timing"]
        # json_extract of one damaged record would fail the whole query: such a row is listed, with a warning
        sql = (f"SELECT {', '.join(cols)}, json_valid(record), "
               "CASE WHEN json_valid(record) THEN json_extract(record, '$.latency.p50') END, "
               "CASE WHEN json_valid(record) THEN json_extract(record, '$.tags') END "
               f"FROM runs{clause} ORDER BY created_at, run_id")
        with self.db.connect(write=False) as con:
            rows = con.execute(sql, args).fetchall()
        return Found([dict(zip(cols, r[:-3]), p50_ms=r[-2] if isinstance(r[-2], (int, float)) else None,
                           tags=_tags(r[-1])) for r in rows],
                     [f"run {r[0]}'s stored record is unreadable: listed from its columns only" for r in rows if not r[-3]])

    def delete_where(self, selection: Selection) -> list[str]:
        """Delete every selected run in one transaction; returns their ids (none: nothing matched)."""
        if not self.path.exists():
            return []
        clause, args = selection.clause()
        with self.db.writing("delete from"), self.db.connect(write=True) as con, transaction(con):
            ids = [r[0] for r in con.execute("SELECT run_id FROM runs" + clause, args)]
            con.execute("DELETE FROM runs" + clause, args)
        return ids

    def by_ids(self, ids: list[str]) -> dict[str, RunRecord]:
        """The stored runs with exactly these ids (missing or unreadable ones absent), read in chunks of 500."""
        rows: list = []
        if self.path.exists():
            with self.db.connect(write=False) as con:
                for i in range(0, len(ids), 500):
                    part = ids[i:i + 500]
                    rows += con.execute(f"SELECT run_id, record FROM runs WHERE run_id IN "
                                        f"({', '.join('?' * len(part))})", part).fetchall()
        return {r.run_id: r for r in _parsed(rows)}

    def summary_cache(self) -> SummaryCache:
        """Pooled-row summaries kept in the store (harness/store/summary_cache.py)."""
        return SummaryCache(self.db)

    def known(self, column: str, limit: int = 8) -> list[str]:
        """The distinct values of a column, newest first: what a "no such campaign" error lists."""
        if column not in _COLUMNS or not self.path.exists():
            return []
        with self.db.connect(write=False) as con:
            rows = con.execute(f"SELECT {column}, MAX(created_at) AS t FROM runs WHERE {column} IS NOT NULL "
                               f"GROUP BY {column} ORDER BY t DESC LIMIT ?", (limit + 1,)).fetchall()
        return [str(r[0]) for r in rows]

    def check_selection(self, sel: Selection) -> None:
        """A selector that names nothing in the store is a BadInput listing what is there."""
        for column, value in (("campaign", sel.campaign), ("timing", sel.timing), ("device", sel.device),
                              ("model_id", sel.model_id)):
            if value is not None and self.path.exists():
                with self.db.connect(write=False) as con:
                    hit = con.execute(f"SELECT 1 FROM runs WHERE {column} = ? LIMIT 1", (value,)).fetchone()
                if not hit:
                    flag = {"model_id": "model-id"}.get(column, column)
                    raise BadInput(f"no runs with --{flag} {shown(value)} in {self.path}; "
                                   f"known: {listing(self.known(column))}")
        for key, value in (sel.tags or {}).items():
            with self.db.connect(write=False) as con:
                seen = [r[0] for r in con.execute(
                    f"SELECT DISTINCT value FROM runs, {TAGS_OF_RUN} WHERE key = ? LIMIT 9", (key,))
                    if r[0] is not None] if self.path.exists() else []
            if str(value) not in [str(v) for v in seen]:
                known = (f"known values: {listing([shown(v, quote=False) for v in seen])}" if seen
                         else "no run has that tag")
                raise BadInput(f"no runs tagged {shown(f'{key}={value}', quote=False)} in {self.path}; {known}")

    def get(self, run_id: str) -> RunRecord:
        """The run with this id, or with this unique id prefix."""
        if not run_id:
            raise BadInput("empty run id")
        if not self.path.exists():
            raise BadInput(f"no run {shown(run_id)}: {self.path} holds no runs yet")
        with self.db.connect(write=False) as con:
            exact = con.execute("SELECT run_id, record FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            rows = [exact] if exact else con.execute(
                "SELECT run_id, record FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY run_id LIMIT 6",
                (len(run_id), run_id)).fetchall()
        if not rows:
            raise BadInput(f"no run {shown(run_id)} in {self.path} (see `harness report`)")
        if len(rows) > 1:
            found = [r[0] for r in rows]
            more = ", ..." if len(found) > 5 else ""
            raise BadInput(f"run id prefix {shown(run_id)} is ambiguous: {', '.join(found[:5])}{more}")
        full, text = rows[0]
        try:
            return _decode(text)
        except (ValueError, TypeError) as e:
            raise BadInput(f"run {full}'s stored record is unreadable ({str(e)[:120]}): "
                           f"`harness runs rm {full}` removes it") from None

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        with self.db.connect(write=False) as con:
            return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def _decode(text: str) -> RunRecord:
    """A stored record, checked against the record schema: a wrong type or range is a ValueError naming the field."""
    if len(text) > MAX_RECORD_BYTES:
        raise ValueError(f"{len(text) / 2**20:.0f} MiB, more than a record may take ({MAX_RECORD_BYTES >> 20} MiB)")
    d = loads(text)  # 4x json's speed: a report reads every selected record
    if not isinstance(d, dict):
        raise ValueError(f"a JSON {type(d).__name__}, not an object")
    problem = record_problem(d)
    if problem:
        raise ValueError(problem)
    return RunRecord.from_dict(d)


def _tags(text: str | None) -> dict:
    try:
        tags = loads(text) if text else {}
    except ValueError:
        return {}
    return tags if isinstance(tags, dict) else {}


def _parsed(rows: list[tuple[str, str]]) -> Found:
    """Stored (run_id, record) rows as RunRecords; the unreadable ones skipped, each named in a warning."""
    out = Found()
    for run_id, text in rows:
        try:
            out.append(_decode(text))
        except (ValueError, TypeError) as e:
            out.warnings.append(f"skipping run {run_id}: its stored record is unreadable ({str(e)[:120]})")
    return out
