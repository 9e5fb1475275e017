"""`harness report`: the grouped table (harness/reports/table.py) rendered as md, csv, json or html."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from common.errors import BadInput
from harness.reports.grouping import NO_RUNS

if TYPE_CHECKING:
    from harness.store.record import RunRecord

FORMATS = ("md", "csv", "json", "html")


def render(records: Iterable[RunRecord], fmt: str, output: Path | None = None, wide: bool = False,
           cache=None) -> str:
    """The report as text in fmt (md, csv, json, html); also written to output when given. wide: markdown with
    every column (csv, json and html always have them all)."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")
    records = list(records)
    if fmt == "md":  # without pandas: the terminal table answers in well under a second
        from harness.reports.markdown import render_md
        from harness.reports.table import build_rows

        return _written(render_md(build_rows(records, cache), records, wide=wide) if records else NO_RUNS + "\n", output)
    from harness.reports.table import build_rows, json_safe, to_csv

    rows = build_rows(records, cache)
    if fmt == "csv":
        text = to_csv(rows) if records else NO_RUNS + "\n"
    elif fmt == "json":
        import orjson

        from harness.reports.v3 import benchmark_v3

        from harness.reports.paper import paper_tables

        payload = {"format": "harness-report/1", "table": json_safe(rows),
                   "paper": [t.to_json() for t in paper_tables(records)],
                   "records": [r.to_dict() for r in records], "executorch_benchmark_v3": benchmark_v3(records)}
        if not records:
            payload["message"] = NO_RUNS
        # NaN -> null (orjson): json.dumps wrote NaN, which no strict JSON reader takes
        text = orjson.dumps(payload, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
                            | orjson.OPT_SERIALIZE_NUMPY).decode()
    else:
        from harness.reports.html import render_html

        text = render_html(rows, records)
    return _written(text, output)


def _written(text: str, output: Path | None) -> str:
    if output is not None:
        write_text(Path(output), text)
    return text


def write_text(path: Path, text: str) -> None:
    """Write atomically; a path that cannot be written is one line naming it (StoreError)."""
    from common.errors import StoreError
    from common.files import ensure_dir, write_atomic

    try:
        ensure_dir(Path(path).parent, "create the report folder")
        write_atomic(Path(path), text)
    except StoreError as e:
        raise StoreError(f"cannot write the report to {path}: {str(e).split(': ', 1)[-1]}") from None
