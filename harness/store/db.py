"""The results store: every RunRecord as one row of root/runs.sqlite.

Filtered fields get their own columns; the whole record is kept as JSON beside them, so a newer harness can read
fields this schema never indexed. The store owns only runs.sqlite: root/programs and root/reports belong to others.
Writers take the lock up front (BEGIN IMMEDIATE) in WAL mode, so two processes adding runs never interleave.
A store of an older schema is migrated in place, in one transaction, the first time this harness opens it
(harness/store/migrate.py); every run is kept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sqlite3
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import orjson

from common.errors import BadInput, StoreError
from program.schema import MAX_RECORD_BYTES, record_problem, shown
from harness.store import migrate
from harness.store.record import SCHEMA_VERSION, RunRecord

DB_NAME = "runs.sqlite"
# sqlite3 messages that mean the disk or the folder, not this code, is at fault
ENVIRONMENT_FAULTS = ("disk I/O error", "database or disk is full", "readonly database", "unable to open database",
                      "attempt to write a readonly")
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT,
    recipe TEXT,
    device TEXT NOT NULL,
    seq_len INTEGER,
    program_sha256 TEXT,
    runner TEXT,
    emulated INTEGER NOT NULL,
    record TEXT NOT NULL,
    model_id TEXT,
    campaign TEXT,
    timing TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_group ON runs (model, recipe, device, seq_len);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_by_campaign ON runs (campaign, created_at);
CREATE TABLE IF NOT EXISTS summaries (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# A run's tags as (key, value) rows. A JSON path ('$.tags."KEY"') cannot name a key holding a double quote or, in
# SQLite 3.40, one stored escaped (json.dumps writes "é" as "\u00e9"): such tags were stored but never selected.
_TAGS_OF_RUN = "json_each(CASE WHEN json_valid(runs.record) THEN runs.record END, '$.tags')"
_COLUMNS = ("run_id", "created_at", "status", "model", "recipe", "device", "seq_len", "program_sha256", "runner",
            "model_id", "campaign", "timing")


class _AlreadyStored(BadInput):
    """A run id the store holds already: the caller's mistake, not a write to keep in a recovery file."""


class ResultsStore:
    """RunRecords in root/runs.sqlite. Reading a store that does not exist yet gives no runs, and creates nothing."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / DB_NAME
        self._checked = False

    # -- connection and schema ----------------------------------------------------------------------------------

    def _bad_file(self, e: Exception) -> BadInput:
        return BadInput(f"{self.path} is not a readable harness results database ({e}): move it aside or use --results")

    def check_writable(self) -> None:
        """Before a run: a store that cannot take its record is an error now, not after minutes of measuring.
        Creates nothing: a folder that does not exist yet must be creatable where it would go."""
        if self.root.exists() and not self.root.is_dir():
            raise BadInput(f"results path {self.root} is a file, not a directory")
        folder = self.root
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise BadInput(f"results path {self.root} cannot be made: {folder} is a file, not a directory")
        if self.read_only() or not os.access(folder, os.W_OK | os.X_OK):
            raise StoreError(f"the results store {self.path} is read-only: give write access or use --results DIR")
        # access() says yes to root everywhere, /proc included: only making a file there tells (it is removed)
        import tempfile

        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".harness-probe-"):
                pass
        except OSError as e:
            raise StoreError(f"cannot write the results store {self.path}: {folder} takes no files "
                             f"({e.strerror or e}): use --results DIR") from None
        if self.path.exists() or self.path.is_symlink():
            # a directory, garbage, another program's SQLite file or a newer schema: found now, not after measuring
            if not self.path.is_file():
                raise BadInput(f"the results store {self.path} is not a file (a folder or a broken link): move it "
                               "aside or use --results DIR")
            try:
                with self._connect(write=True):
                    pass  # opens it, checks its schema (migrating an older one), as saving the record will
            except sqlite3.Error as e:
                raise StoreError(f"cannot open the results store {self.path}: {e} (use --results DIR)") from None

    def read_only(self) -> bool:
        """True when this process may read the store but not write it (its file or folder is not writable)."""
        return self.path.exists() and not (os.access(self.path, os.W_OK) and os.access(self.root, os.W_OK))

    @contextmanager
    def _connect(self, write: bool) -> Iterator[sqlite3.Connection]:
        if self.root.exists() and not self.root.is_dir():
            raise BadInput(f"results path {self.root} is a file, not a directory")
        if write:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the results directory {self.root}: {e.strerror or e}") from None
        read_only = not write and self.read_only()
        if write and self.read_only():
            raise StoreError(f"the results store {self.path} is read-only: give write access or use --results DIR")
        con = self._open(read_only)
        try:
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not self._checked:
                try:
                    self._check_read_only(con) if read_only else self._prepare(con)
                except sqlite3.OperationalError as e:
                    # A full disk cannot take WAL's -shm file or the schema check's transaction. A reader needs
                    # neither: when no write-ahead log is pending, the file alone is the store, opened immutable.
                    if write or read_only or not self._environment_fault(e) or self._wal_pending():
                        raise
                    con.close()
                    read_only, con = True, self._open(True)
                    self._check_read_only(con)
                self._checked = not read_only
            yield con
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                raise  # contention past the busy timeout is not the file's fault
            if "not a database" in str(e) or "malformed" in str(e) or "corrupt" in str(e):
                raise self._bad_file(e) from None
            if self._environment_fault(e):
                raise StoreError(f"cannot {'write' if write else 'read'} the results store {self.path}: {e} "
                                 "(free disk space, fix its permissions, or use --results DIR)") from None
            raise
        finally:
            con.close()

    def _open(self, read_only: bool) -> sqlite3.Connection:
        try:
            # isolation_level=None: transactions are spelled out below, not opened implicitly by the driver.
            # A read-only store (reports of an archived folder) opens as immutable: no lock, no journal, no -shm.
            # The path is escaped for the URI: unescaped, "%41" named a sibling store and "#" or "?" cut the path.
            target, uri = ((f"file:{quote(str(self.path.absolute()), safe='/')}?immutable=1", True) if read_only
                           else (str(self.path), False))
            return sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, uri=uri)
        except sqlite3.Error as e:
            raise BadInput(f"cannot open results database {self.path}: {e}") from None

    @staticmethod
    def _environment_fault(e: sqlite3.DatabaseError) -> bool:
        return isinstance(e, sqlite3.OperationalError) and any(m in str(e) for m in ENVIRONMENT_FAULTS)

    def _wal_pending(self) -> bool:
        wal = self.path.with_name(self.path.name + "-wal")
        return wal.exists() and wal.stat().st_size > 0

    def _check_read_only(self, con: sqlite3.Connection) -> None:
        """A read-only store must already be of this schema: it cannot be migrated where it is."""
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        found = int(row[0]) if row and str(row[0]).isdigit() else None
        if found is None:
            raise self._bad_file(ValueError("no schema version"))
        if found > SCHEMA_VERSION:
            raise BadInput(f"{self.path} has results schema version {found}, newer than this harness reads "
                           f"({SCHEMA_VERSION}): upgrade harness")
        if found < SCHEMA_VERSION:
            raise StoreError(f"{self.path} is read-only and of results schema {found}: open it once with write "
                             f"access so it migrates to schema {SCHEMA_VERSION}, or copy it elsewhere")

    def _prepare(self, con: sqlite3.Connection) -> None:
        """Check the schema version; create the schema on first use."""
        con.execute("PRAGMA journal_mode = WAL")
        with transaction(con):
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                raise self._bad_file(ValueError(f"an SQLite file of other tables: {', '.join(sorted(tables))}"))
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if tables else None
            if row is not None and not str(row[0]).isdigit():
                raise self._bad_file(ValueError(f"schema_version {row[0]!r}"))
            found = int(row[0]) if row is not None else SCHEMA_VERSION
            if found < SCHEMA_VERSION:
                migrate.upgrade(con, found)  # inside this transaction: all of it lands, or none
            if found <= SCHEMA_VERSION:
                # executescript would commit this transaction: run the statements one by one instead
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    con.execute(stmt)
            if row is None or found < SCHEMA_VERSION:
                con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                            (str(SCHEMA_VERSION),))
        if found > SCHEMA_VERSION:
            raise BadInput(
                f"{self.path} has results schema version {found}, newer than this harness reads ({SCHEMA_VERSION}):"
                " upgrade harness"
            )

    # -- writing ------------------------------------------------------------------------------------------------

    def add(self, record: RunRecord, replace: bool = False) -> None:
        """Store one record in one transaction; replace=True overwrites a stored run with the same id."""
        self.add_many([record], replace=replace)

    def add_many(self, records: list[RunRecord], replace: bool = False) -> None:
        """Store records in one transaction: all of them, or (on any error) none."""
        for record in records:
            if not isinstance(record, RunRecord):
                raise TypeError(f"ResultsStore.add takes a RunRecord, not {type(record).__name__}")
        # checked and serialised before touching the db: a bad record writes nothing, and its measurement is kept
        dicts = [record.to_dict() for record in records]  # once each: a record of 100,000 samples is not small
        for record, d in zip(records, dicts):
            problem = record_problem(d)
            if problem:
                raise BadInput(f"run {shown(record.run_id)} cannot be stored: {problem}; "
                               f"{self._recover(records)}")
        values = [[getattr(r, c) for c in _COLUMNS] + [int(bool(r.emulated)), json.dumps(d)]
                  for r, d in zip(records, dicts)]
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
        return f"nowhere could keep the measurement, so here it is: {json.dumps([r.to_dict() for r in records])}"

    def _insert(self, records: list[RunRecord], values: list[list], replace: bool) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        sql = (f"{verb} INTO runs ({', '.join(_COLUMNS)}, emulated, record) "
               f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})")
        with self._connect(write=True) as con, transaction(con):
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
        with self._writing("delete from"), self._connect(write=True) as con, transaction(con):
            con.execute("DELETE FROM runs WHERE run_id = ?", (full,))
        return full

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Any SQLite error of a write other than saving a run (deleting, caching) as one line naming the store."""
        try:
            yield
        except (sqlite3.Error, OverflowError) as e:
            raise StoreError(f"cannot {what} the results store {self.path}: {e} (try again, or free disk space)") \
                from None

    # -- reading ------------------------------------------------------------------------------------------------

    def runs(
        self,
        status: str | None = None,
        model: str | None = None,
        recipe: str | None = None,
        device: str | None = None,
        ids: list[str] | None = None,
        selection: "Selection | None" = None,
    ) -> list[RunRecord]:
        """Stored runs matching every given filter, oldest first."""
        sel = selection or Selection()
        sel = dataclasses.replace(sel, status=status or sel.status, model=model or sel.model,
                                  recipe=recipe or sel.recipe, device=device or sel.device,
                                  ids=ids if ids is not None else sel.ids)
        if not self.path.exists():
            return []
        if sel.ids is not None and not sel.ids:
            return []
        where, args = sel.where()
        sql = "SELECT record FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self._connect(write=False) as con:
            rows = con.execute(sql.replace("SELECT record", "SELECT run_id, record") + " ORDER BY created_at, run_id",
                               args).fetchall()
        return [r for r in (_parse(run_id, text) for run_id, text in rows) if r is not None]

    def summaries(self, selection: "Selection | None" = None) -> list[dict]:
        """The indexed columns plus p50 and tags of the selected runs, oldest first, without parsing whole records
        (`harness runs list` on 10,000 runs)."""
        if not self.path.exists():
            return []
        sel = selection or Selection()
        where, args = sel.where()
        cols = ["run_id", "created_at", "campaign", "status", "model", "model_id", "recipe", "device", "timing"]
        # json_extract of one damaged record would fail the whole query: such a row is listed, with a warning
        sql = (f"SELECT {', '.join(cols)}, json_valid(record), "
               "CASE WHEN json_valid(record) THEN json_extract(record, '$.latency.p50') END, "
               "CASE WHEN json_valid(record) THEN json_extract(record, '$.tags') END "
               "FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY created_at, run_id")
        with self._connect(write=False) as con:
            rows = con.execute(sql, args).fetchall()
        for r in rows:
            if not r[-3]:
                print(f"warning: run {r[0]}'s stored record is unreadable: listed from its columns only",
                      file=sys.stderr)
        return [dict(zip(cols, r[:-3]), p50_ms=r[-2] if isinstance(r[-2], (int, float)) else None, tags=_tags(r[-1]))
                for r in rows]

    def delete_where(self, selection: "Selection") -> list[str]:
        """Delete every selected run in one transaction; returns their ids (none: nothing matched)."""
        if not self.path.exists():
            return []
        where, args = selection.where()
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._writing("delete from"), self._connect(write=True) as con, transaction(con):
            ids = [r[0] for r in con.execute("SELECT run_id FROM runs" + clause, args)]
            con.execute("DELETE FROM runs" + clause, args)
        return ids

    def by_ids(self, ids: list[str]) -> dict[str, RunRecord]:
        """The stored runs with exactly these ids (missing ones absent), read in chunks of 500."""
        out: dict[str, RunRecord] = {}
        if not self.path.exists():
            return out
        with self._connect(write=False) as con:
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                rows = con.execute(f"SELECT run_id, record FROM runs WHERE run_id IN ({', '.join('?' * len(part))})",
                                   part).fetchall()
                out.update({rid: r for rid, r in ((rid, _parse(rid, text)) for rid, text in rows) if r is not None})
        return out

    def summary_cache(self) -> "SummaryCache":
        """Pooled-row summaries kept in the store (see SummaryCache)."""
        return SummaryCache(self)

    def known(self, column: str, limit: int = 8) -> list[str]:
        """The distinct values of a column, newest first: what a "no such campaign" error lists."""
        if column not in _COLUMNS or not self.path.exists():
            return []
        with self._connect(write=False) as con:
            rows = con.execute(f"SELECT {column}, MAX(created_at) AS t FROM runs WHERE {column} IS NOT NULL "
                               f"GROUP BY {column} ORDER BY t DESC LIMIT ?", (limit + 1,)).fetchall()
        return [str(r[0]) for r in rows]

    def check_selection(self, sel: "Selection") -> None:
        """A selector that names nothing in the store is a BadInput listing what is there."""
        for column, value in (("campaign", sel.campaign), ("timing", sel.timing), ("device", sel.device),
                              ("model_id", sel.model_id)):
            if value is not None and self.path.exists():
                with self._connect(write=False) as con:
                    hit = con.execute(f"SELECT 1 FROM runs WHERE {column} = ? LIMIT 1", (value,)).fetchone()
                if not hit:
                    flag = {"model_id": "model-id"}.get(column, column)
                    raise BadInput(f"no runs with --{flag} {shown(value)} in {self.path}; "
                                   f"known: {_listing(self.known(column))}")
        for key, value in (sel.tags or {}).items():
            with self._connect(write=False) as con:
                seen = [r[0] for r in con.execute(
                    f"SELECT DISTINCT value FROM runs, {_TAGS_OF_RUN} WHERE key = ? LIMIT 9", (key,))
                    if r[0] is not None] if self.path.exists() else []
            if str(value) not in [str(v) for v in seen]:
                known = (f"known values: {_listing([shown(v, quote=False) for v in seen])}" if seen
                         else "no run has that tag")
                raise BadInput(f"no runs tagged {shown(f'{key}={value}', quote=False)} in {self.path}; {known}")

    def get(self, run_id: str) -> RunRecord:
        """The run with this id, or with this unique id prefix."""
        if not run_id:
            raise BadInput("empty run id")
        if not self.path.exists():
            raise BadInput(f"no run {shown(run_id)}: {self.path} holds no runs yet")
        with self._connect(write=False) as con:
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
        with self._connect(write=False) as con:
            return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error, but only while a transaction is open: on a full disk
    SQLite has already rolled back, and a second ROLLBACK ("cannot rollback - no transaction is active") would
    replace the real error with a traceback."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the error being raised says more than this one
        raise


def _listing(values: list[str], limit: int = 8) -> str:
    if not values:
        return "none (the store holds no runs)"
    return ", ".join(values[:limit]) + (", ..." if len(values) > limit else "")


def parse_when(text: str, flag: str, end_of_day: bool = False) -> str:
    """An ISO date or date-time (UTC unless it says otherwise) as the store's created_at format."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"{flag} {text!r}: not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    if end_of_day and len(text.strip()) <= 10:  # a bare date: the whole of that day
        when += dt.timedelta(days=1) - dt.timedelta(seconds=1)
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Selection:
    """Which runs a report, compare or `runs` command works on; every field given must match."""

    ids: list[str] | None = None  # full run ids or unique prefixes
    campaign: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    model: str | None = None  # preset name as recorded (model column)
    model_id: str | None = None  # model identity ("sst2-student@3f2a9c1b cls2")
    recipe: str | None = None
    device: str | None = None
    timing: str | None = None
    since: str | None = None  # created_at >= (store format; see parse_when)
    until: str | None = None  # created_at <=

    def empty(self) -> bool:
        return all(v in (None, {}, []) for v in dataclasses.asdict(self).values())

    def where(self) -> tuple[list[str], list]:
        where, args = [], []
        for col in ("status", "model", "model_id", "recipe", "device", "timing", "campaign"):
            if getattr(self, col) is not None:
                where.append(f"{col} = ?")
                args.append(getattr(self, col))
        for key, value in self.tags.items():
            where.append(f"EXISTS (SELECT 1 FROM {_TAGS_OF_RUN} WHERE key = ? AND CAST(value AS TEXT) = ?)")
            args += [key, str(value)]
        if self.since:
            where.append("created_at >= ?")
            args.append(self.since)
        if self.until:
            where.append("created_at <= ?")
            args.append(self.until)
        if self.ids:
            clauses = []
            for i in self.ids:
                clauses.append("substr(run_id, 1, ?) = ?")
                args += [len(i), i]
            where.append("(" + " OR ".join(clauses) + ")")
        return where, args


class SummaryCache:
    """Summaries of report rows that pool several runs, kept by a key naming the runs they pool: stored runs never
    change, so a row of runs already summarised costs a lookup, not a bootstrap (10,000 runs: seconds -> a query).
    Best effort: a store that cannot be written (read-only, full) only means computing them again next time."""

    def __init__(self, store: "ResultsStore"):
        self.store, self.known, self.new = store, {}, {}

    def prefetch(self, keys: list[str]) -> None:
        if not keys or not self.store.path.exists():
            return
        try:
            with self.store._connect(write=False) as con:
                for i in range(0, len(keys), 500):
                    part = keys[i:i + 500]
                    rows = con.execute(f"SELECT key, value FROM summaries WHERE key IN ({', '.join('?' * len(part))})",
                                       part).fetchall()
                    self.known.update((k, json.loads(v)) for k, v in rows)
        except (sqlite3.Error, BadInput, ValueError):
            pass  # an older or read-only store without the table: nothing cached

    def get(self, key: str) -> dict | None:
        return self.known.get(key)

    def put(self, key: str, value: dict) -> None:
        self.new[key] = value

    def flush(self) -> None:
        if not self.new or self.store.read_only():
            return
        try:
            with self.store._connect(write=True) as con, transaction(con):
                con.executemany("INSERT OR REPLACE INTO summaries (key, value) VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in self.new.items()])
        except (sqlite3.Error, BadInput, ValueError):
            pass
        self.known.update(self.new)
        self.new = {}


def _decode(text: str) -> RunRecord:
    """A stored record, checked against the record schema: a wrong type or range is a ValueError naming the field."""
    if len(text) > MAX_RECORD_BYTES:
        raise ValueError(f"{len(text) / 2**20:.0f} MiB, more than a record may take ({MAX_RECORD_BYTES >> 20} MiB)")
    d = orjson.loads(text)  # 4x json's speed: a report reads every selected record
    if not isinstance(d, dict):
        raise ValueError(f"a JSON {type(d).__name__}, not an object")
    problem = record_problem(d)
    if problem:
        raise ValueError(problem)
    return RunRecord.from_dict(d)


def _tags(text: str | None) -> dict:
    try:
        tags = json.loads(text) if text else {}
    except ValueError:
        return {}
    return tags if isinstance(tags, dict) else {}


def _parse(run_id: str, text: str) -> RunRecord | None:
    """A stored record, or None (with a warning naming it) when it cannot be read: one bad row never stops a report."""
    try:
        return _decode(text)
    except (ValueError, TypeError) as e:
        print(f"warning: skipping run {run_id}: its stored record is unreadable ({str(e)[:120]})", file=sys.stderr)
        return None
