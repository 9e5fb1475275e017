"""Summaries of report rows that pool several runs, kept in the store's summaries table by a key naming the runs.

Filled when runs are stored (the commands that store runs call harness.reports.table.fill_summaries), so the first
report after a campaign reads them instead of bootstrapping them (issue #27: a cold report of 10,000 runs in 2 s).
"""

from __future__ import annotations

import sqlite3

from common.errors import BadInput
from harness.store.database import Database, dumps, loads, transaction


class SummaryCache:
    """Summaries of report rows that pool several runs, kept by a key naming the runs they pool: stored runs never
    change, so a row of runs already summarised costs a lookup, not a bootstrap (10,000 runs: seconds -> a query).
    Best effort: a store that cannot be written (read-only, full) only means computing them again next time."""

    def __init__(self, store: Database):
        self.store, self.known, self.new = store, {}, {}

    def prefetch(self, keys: list[str]) -> None:
        if not keys or not self.store.path.exists():
            return
        try:
            with self.store.connect(write=False) as con:
                for i in range(0, len(keys), 500):
                    part = keys[i:i + 500]
                    rows = con.execute(f"SELECT key, value FROM summaries WHERE key IN ({', '.join('?' * len(part))})",
                                       part).fetchall()
                    self.known.update((k, loads(v)) for k, v in rows)
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
            with self.store.connect(write=True) as con, transaction(con):
                con.executemany("INSERT OR REPLACE INTO summaries (key, value) VALUES (?, ?)",
                                [(k, dumps(v)) for k, v in self.new.items()])
        except (sqlite3.Error, BadInput, ValueError):
            pass
        self.known.update(self.new)
        self.new = {}
