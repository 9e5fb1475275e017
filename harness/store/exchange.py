"""Runs as JSON lines, to move them between stores: several lab hosts feed one store.

A file is a header line {"format": "harness-runs", "schema": N} and one RunRecord (to_dict) per line. Importing is
idempotent by run id: a run already stored with the same content is skipped; the same id with other content is
refused, and nothing of the file is written then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from common.errors import BadInput
from program.schema import MAX_RECORD_BYTES, record_problem, shown
from harness.store.record import SCHEMA_VERSION, RunRecord

FORMAT = "harness-runs"


def dumps(records: Iterable[RunRecord]) -> str:
    head = json.dumps({"format": FORMAT, "schema": SCHEMA_VERSION})
    return "".join([head + "\n"] + [json.dumps(r.to_dict(), sort_keys=True) + "\n" for r in records])


def load(path: Path) -> list[RunRecord]:
    """The records of a runs file, checked line by line; any bad line is a BadInput naming the file and line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not a harness runs file (not UTF-8 text)") from None
    if not lines:
        raise BadInput(f"{path} is empty: not a harness runs file")
    try:
        head = json.loads(lines[0])
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("format") != FORMAT or not isinstance(head.get("schema"), int):
        raise BadInput(f"{path}:1 is not a harness runs file header ({{\"format\": \"{FORMAT}\", \"schema\": N}})")
    if head["schema"] > SCHEMA_VERSION:
        raise BadInput(f"{path} holds runs of results schema {head['schema']}, newer than this harness reads "
                       f"({SCHEMA_VERSION}): upgrade harness")
    out, seen = [], set()
    for i, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        if len(line) > MAX_RECORD_BYTES:
            raise BadInput(f"{path}:{i}: a line of {len(line) / 2**20:.0f} MiB, more than a run record may take "
                           f"({MAX_RECORD_BYTES >> 20} MiB): nothing imported")
        try:
            d = json.loads(line)
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
        except (ValueError, TypeError) as e:
            raise BadInput(f"{path}:{i}: not a run record ({str(e)[:120]})") from None
        problem = record_problem(d)  # a wrong type here would break every report that meets the run
        if problem:
            name = f"run {shown(d.get('run_id'))}: " if isinstance(d.get("run_id"), str) else ""
            raise BadInput(f"{path}:{i}: {name}{problem}: nothing imported")
        rec = RunRecord.from_dict(d)
        if rec.run_id in seen:
            raise BadInput(f"{path}:{i}: run {rec.run_id} appears twice in the file")
        seen.add(rec.run_id)
        out.append(rec)
    return out


def plan_import(records: list[RunRecord], stored: dict[str, RunRecord], source: str) -> list[RunRecord]:
    """The records to add: new ids only; a stored id with the same content is skipped, other content refused."""
    new = []
    for r in records:
        old = stored.get(r.run_id)
        if old is None:
            new.append(r)
        elif json.dumps(old.to_dict(), sort_keys=True) != json.dumps(r.to_dict(), sort_keys=True):
            raise BadInput(f"{source}: run {r.run_id} is already stored with different content: nothing imported "
                           "(remove one with `harness runs rm --run ID`)")
    return new
