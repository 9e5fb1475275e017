"""render() in md/csv/json (with ExecuTorch benchmark v3 rows), its errors, and the report/compare commands."""

import io
import re
import json
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.commands.report import compare_command, report_command
from common.errors import BadInput, HarnessError
from harness.store.record import RunRecord
from harness.reports.grouping import NO_RUNS
from harness.reports.markdown import render_md
from harness.reports.report import render
from harness.reports.table import build_rows
from harness.store.db import ResultsStore
from tests.support.factories import run


@pytest.fixture
def records():
    return [
        run("fp32", median_ms=12.0, seed=1, accuracy={"metric": "accuracy", "value": 0.9}),
        run("int8", median_ms=4.0, seed=2, accuracy={"metric": "accuracy", "value": 0.89,
                                                      "gate": {"ratio": 0.99, "passed": True}}),
        run("int8", device="emu-arm64", median_ms=3000.0, seed=3, emulated=True),
        run("int4", status="failed", error="runner failed on pixel8pro: exit code 1"),
    ]


def test_markdown_sections_rows_and_notes(records):
    md = render(records, "md")
    hw, rest = md.split("## Emulated")
    emu, failed = rest.split("## Failed runs")
    assert "Every row: model mobilebert, weights random (untrained), device pixel8pro, seq_len 128" in hw
    int8 = next(ln for ln in hw.splitlines() if ln.startswith("| int8 "))
    assert "-0.010" in int8 and re.search(r"\| (2\.9\d|3\.0\d)x ", int8)  # int8 drawn at a third of fp32's median
    assert "emu-arm64" not in hw and "emu-arm64" in emu and "never ranked" in emu
    assert "int4" in failed and "exit code 1" in failed
    assert "untrained (random) weights" in md
    lines = [ln for ln in hw.splitlines() if ln.startswith("|")]
    assert len({len(ln) for ln in lines}) == 1  # columns padded: it reads in a terminal
    assert "pass" in render_md(build_rows(records), records, wide=True)  # the gate column is in the wide table


def _two_checkpoints():
    """Two trained checkpoints (named as the store names them), a seq_len sweep, noisy runs, an invalid run."""
    out = []
    for model, acc32 in (("sst2-small@3f2a9c1b", 0.777), ("sst2-distilled@77b1e0aa", 0.569)):
        for recipe, ms, acc in (("fp32", 29.0, acc32), ("int8-static", 11.0, acc32 - 0.01)):
            for seq in (32, 128):
                r = run(recipe, median_ms=ms * seq / 128, seed=len(out), random=False,
                        accuracy={"metric": "accuracy", "value": acc, "gate": {"passed": recipe == "fp32" or seq > 32}},
                        flags=["high_cv"] if seq == 32 else [])
                r.model, r.seq_len = model, seq
                out.append(r)
    out[-1].status, out[-1].flags = "invalid", ["throttled"]
    return out


def test_compact_markdown_fits_100_columns_and_names_each_model(records):
    recs = _two_checkpoints()
    md = render_md(build_rows(recs), recs)
    assert max(len(ln) for ln in md.splitlines() if not ln.startswith("- ")) <= 100, md  # notes: one line each
    assert "### sst2-small@3f2a9c1b" in md and "### sst2-distilled@77b1e0aa" in md  # a table per model
    small = md.split("### sst2-small@3f2a9c1b")[1].split("###")[0].split("\n- ")[0]
    assert "0.777" in small and "0.569" not in small  # no table mixes the two checkpoints
    headers = [[c.strip() for c in ln.split("|")[1:-1]] for ln in md.splitlines() if ln.startswith("|recipe")]
    assert len(headers) == 2, md  # crowded: the spaces around the pipes went, so that it fits
    assert headers[0] == ["recipe", "seq", "p50 ms [CI]", "×fp32", "size MB", "RSS MB", "acc", "Δ fp32", "status",
                          "runs"]  # the sweep's seq_len varies, so it is a column; weights, device... are shared
    assert "Every row: weights from checkpoint, device pixel8pro" in md and "untrained" not in md
    assert "|invalid throttled" in md and "|noisy gate-fail" in md
    assert "noisy = high_cv" in md and "gate-fail = gate_fail" in md  # the short flags are explained
    assert "`harness report --wide`" in md


def test_wide_markdown_has_every_column(records):
    wide = render_md(build_rows(records), records, wide=True)
    header = next(ln for ln in wide.splitlines() if ln.startswith("| model"))
    for col in ("seq", "runner", "thr", "weights", "p50 ms [95% CI]", "p90 ms", "speed-up vs fp32", "rank",
                "program MB", "peak RSS MB", "load ms", "1st inf ms", "accuracy", "Δ vs fp32", "agree fp32",
                "gate", "flags", "status", "runs", "run ids"):
        assert f"| {col} " in header, col
    assert records[1].run_id in wide and "Every row" not in wide and "--wide" not in wide


def test_report_counts_runs_and_groups_in_good_english(records):
    assert render(records[:1], "md").startswith("# harness report: 1 run, 1 group\n")
    assert render(records[:1] * 2, "md").startswith("# harness report: 2 runs, 1 group\n")
    assert render(records, "md").startswith("# harness report: 4 runs, 4 groups\n")
    assert "1 run in 1 group," in render(records[:1], "html")


def test_csv_is_the_table(records):
    df = pd.read_csv(io.StringIO(render(records, "csv")))
    assert len(df) == 4
    assert set(df["status"]) == {"ok", "failed"}
    r8 = df[(df.recipe == "int8") & (df.section == "hardware")].iloc[0]
    assert r8["speedup_vs_fp32"] == pytest.approx(3.0, rel=0.05)


def test_json_holds_table_records_and_v3_rows(records):
    doc = json.loads(render(records, "json"))
    assert len(doc["table"]) == 4
    assert [RunRecord.from_dict(d) for d in doc["records"]] == records
    v3 = doc["executorch_benchmark_v3"]
    for row in v3:
        assert set(row) == {"benchmark", "model", "metric", "runners"}
        assert row["benchmark"]["name"] == "ExecuTorch" and row["benchmark"]["mode"] == "inference"
        assert set(row["model"]) == {"name", "type", "backend"}
        assert {"name", "benchmark_values", "target_value", "extra_info"} <= set(row["metric"])
        assert isinstance(row["metric"]["benchmark_values"], list)
        assert row["runners"][0]["name"] in {"pixel8pro", "emu-arm64"}
    by = {(r["benchmark"]["extra_info"]["run_id"], r["metric"]["name"]): r for r in v3}
    int8 = records[1]
    avg = by[(int8.run_id, "avg_inference_latency(ms)")]["metric"]["benchmark_values"][0]
    assert avg == pytest.approx(np.mean(int8.latencies_ms))
    assert by[(int8.run_id, "model_load_time(ms)")]["metric"]["benchmark_values"] == [int8.load_ms]
    assert by[(int8.run_id, "accuracy")]["metric"]["benchmark_values"] == [0.89]
    assert (int8.run_id, "top1_agreement_fp32") not in by  # not measured for this run
    assert by[(int8.run_id, "avg_inference_latency(ms)")]["model"]["backend"] == "int8"
    assert (records[3].run_id, "FAILURE_REPORT") in by
    assert by[(records[2].run_id, "p50_inference_latency(ms)")]["runners"][0]["extra_info"]["emulated"] is True


def test_no_runs_yet():
    assert render([], "md").strip() == NO_RUNS
    assert render([], "csv").strip() == NO_RUNS
    assert json.loads(render([], "json"))["message"] == NO_RUNS
    assert NO_RUNS in render([], "html")


def test_output_file_and_errors(records, tmp_path):
    out = tmp_path / "sub" / "r.md"
    assert render(records, "md", out) == out.read_text()
    assert not list(out.parent.glob(".*tmp"))
    with pytest.raises(BadInput, match="unknown report format 'xml': choose one of md, csv, json, html"):
        render(records, "xml")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BadInput, match=r"cannot write the report to .*afile/r\.csv"):
        render(records, "csv", tmp_path / "afile" / "r.csv")


@click.group()
@click.option("--results", type=click.Path(path_type=Path))
@click.pass_context
def cli(ctx, results):
    ctx.obj = {"results": results}


cli.add_command(report_command)
cli.add_command(compare_command)


def _invoke(*args):
    res = CliRunner().invoke(cli, list(args), catch_exceptions=True)
    if isinstance(res.exception, HarnessError):
        return res, str(res.exception)
    assert res.exit_code == 0, (res.output, res.exception)
    return res, None


def test_report_command_filters_and_writes(records, tmp_path):
    store = ResultsStore(tmp_path)
    for r in records:
        store.add(r)
    res, _ = _invoke("--results", str(tmp_path), "report", "--device", "pixel8pro", "--recipe", "int8")
    rows = [ln for ln in res.output.splitlines() if ln.startswith("| int8 ")]
    assert len(rows) == 1 and "device pixel8pro" in res.output and "emu-arm64" not in res.output
    res, _ = _invoke("--results", str(tmp_path), "report", "--format", "html")
    written = list((tmp_path / "reports").glob("report-*.html"))
    assert len(written) == 1 and f"wrote {written[0]}" in res.output
    res, _ = _invoke("--results", str(tmp_path), "report", "--format", "csv", "--output", str(tmp_path / "t.csv"))
    assert len(pd.read_csv(tmp_path / "t.csv")) == 4
    res, _ = _invoke("--results", str(tmp_path / "empty"), "report")
    assert res.output.strip() == NO_RUNS
    res = CliRunner().invoke(cli, ["--results", str(tmp_path), "report", "--format", "xml"])
    assert res.exit_code == 2 and "xml" in res.output
    res, _ = _invoke("--results", str(tmp_path), "report", "--wide", "--output", str(tmp_path / "w.md"))
    assert "| p90 ms " in (tmp_path / "w.md").read_text() and "wrote" in res.output
    res = CliRunner().invoke(cli, ["--results", str(tmp_path), "report", "--wide", "--format", "csv"])
    assert res.exit_code == 2 and "--wide is for --format md" in res.output


def test_compare_command(records, tmp_path):
    store = ResultsStore(tmp_path)
    for r in records:
        store.add(r)
    res, _ = _invoke("--results", str(tmp_path), "compare", records[0].run_id, records[1].run_id)
    assert re.search(r"B is faster: (2\.9\d|3\.0\d)x the speed of A", res.output)
    res, _ = _invoke("--results", str(tmp_path), "compare", records[0].run_id, records[1].run_id, "--format", "json")
    assert json.loads(res.output)["latency"]["verdict"] == "faster"
    _, err = _invoke("--results", str(tmp_path), "compare", records[0].run_id, records[2].run_id)
    assert "is emulated" in err
    _, err = _invoke("--results", str(tmp_path), "compare", records[0].run_id, "nope")
    assert "no run 'nope'" in err
