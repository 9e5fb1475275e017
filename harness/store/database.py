"""The results database: root/runs.sqlite, its connection, schema and transactions; nothing about what a run is.

Writers take the lock up front (BEGIN IMMEDIATE, `transaction`, the one place that spells it) in WAL mode, so two
processes adding runs never interleave. A store of an older schema is migrated in place, in one transaction, the
first time this harness opens it (harness/store/migrate.py); every run is kept. Reading a database that does not
exist yet creates nothing. Records travel as JSON text written and read by orjson (`dumps`, `loads`).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import orjson

from common.errors import BadInput, StoreError
from harness.store import migrate
from harness.store.record import SCHEMA_VERSION

DB_NAME = "runs.sqlite"
# sqlite3 messages that mean the disk or the folder, not this code, is at fault
ENVIRONMENT_FAULTS = ("disk I/O error", "database or disk is full", "readonly database", "unable to open database",
                      "attempt to write a readonly")
BUSY_TIMEOUT_MS = 30_000
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

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


def dumps(value: Any) -> str:
    """JSON text as the store keeps it (orjson: NaN and infinity become null, which strict JSON readers take)."""
    return orjson.dumps(value, option=_JSON_OPTIONS).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


class Database:
    """root/runs.sqlite: connections (write or read-only), the schema and its migration, and what its faults mean."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / DB_NAME
        self._checked = False

    def exists(self) -> bool:
        return self.path.exists()

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
                with self.connect(write=True):
                    pass  # opens it, checks its schema (migrating an older one), as saving the record will
            except sqlite3.Error as e:
                raise StoreError(f"cannot open the results store {self.path}: {e} (use --results DIR)") from None

    def read_only(self) -> bool:
        """True when this process may read the store but not write it (its file or folder is not writable)."""
        return self.path.exists() and not (os.access(self.path, os.W_OK) and os.access(self.root, os.W_OK))

    @contextmanager
    def connect(self, write: bool) -> Iterator[sqlite3.Connection]:
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

    @contextmanager
    def writing(self, what: str) -> Iterator[None]:
        """Any SQLite error of a write other than saving a run (deleting, caching) as one line naming the store."""
        try:
            yield
        except (sqlite3.Error, OverflowError) as e:
            raise StoreError(f"cannot {what} the results store {self.path}: {e} (try again, or free disk space)") \
                from None


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


