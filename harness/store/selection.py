"""Which runs a report, compare or `runs` command works on: a Selection, and the SQL WHERE clause it stands for."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

from common.errors import BadInput

# A run's tags as (key, value) rows. A JSON path ('$.tags."KEY"') cannot name a key holding a double quote or, in
# SQLite 3.40, one stored escaped (json.dumps writes "é" as "\u00e9"): such tags were stored but never selected.
TAGS_OF_RUN = "json_each(CASE WHEN json_valid(runs.record) THEN runs.record END, '$.tags')"

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
            where.append(f"EXISTS (SELECT 1 FROM {TAGS_OF_RUN} WHERE key = ? AND CAST(value AS TEXT) = ?)")
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

    def clause(self) -> tuple[str, list]:
        """" WHERE ..." (or "") and its arguments."""
        where, args = self.where()
        return (f" WHERE {' AND '.join(where)}" if where else ""), args


def listing(values: list[str], limit: int = 8) -> str:
    if not values:
        return "none (the store holds no runs)"
    return ", ".join(values[:limit]) + (", ..." if len(values) > limit else "")


