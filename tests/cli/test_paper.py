"""`harness paper`: the paper's table through the real export + interleaved campaign, at test size (--quick), and
its verdicts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def _harness(results: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"})


def test_quick_table_runs_the_rows_then_reuses_the_programs(tmp_path):
    args = ("paper", "--quick", "--rows", "bert-base", "--timing", "quick", "--repeat", "1", "--target-ci", "0")
    p = _harness(tmp_path, *args)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "# The MobileBERT paper on host (--quick: test-size models" in out
    assert "untrained random weights" in out and "seq_len 32" in out and "2 threads" in out
    table = [ln for ln in out.splitlines() if ln.startswith("| BERT-base") or ln.startswith("| MobileBERT |")]
    assert len(table) == 2, out
    bert = table[0].split(" | ")
    assert "(109.0M)" in bert[1] and "(22.5G)" in bert[2] and "(5.52x)" in bert[5]
    assert "MobileBERT is 5.5x faster than BERT-base: " in out and "measured (paper 5.52x" in out
    assert "MobileBERT is 4.3x smaller than BERT-base" in out
    written = list((tmp_path / "paper").glob("paper-*.md"))
    assert len(written) == 1 and written[0].read_text().splitlines()[2] in out
    # the store holds the table: the markdown report, the HTML report, the JSON report and another store that
    # imports `results export` all show the rows the command printed
    campaign = written[0].stem
    report = _harness(tmp_path, "report", "--campaign", campaign)
    assert report.returncode == 0, report.stderr
    assert "## The MobileBERT paper on host (--quick" in report.stdout
    for line in table:
        assert line in report.stdout
    page = tmp_path / "paper.html"
    assert _harness(tmp_path, "report", "--campaign", campaign, "--format", "html", "--output",
                    str(page)).returncode == 0
    html = page.read_text()
    assert "The MobileBERT paper on host" in html and "MobileBERT is 5.5x faster than BERT-base: " in html
    import json

    doc = json.loads(_harness(tmp_path, "report", "--campaign", campaign, "--format", "json").stdout)
    (tab,) = doc["paper"]
    assert tab["campaign"] == campaign and tab["quick"] is True
    assert [r["key"] for r in tab["recipes"]["fp32"]["rows"]] == ["bert-base", "mobilebert"]
    runs = tmp_path / "runs.jsonl"
    assert _harness(tmp_path, "results", "export", "--campaign", campaign, "--output", str(runs)).returncode == 0
    other = tmp_path / "elsewhere"
    imported = _harness(other, "results", "import", str(runs))
    assert imported.returncode == 0, imported.stderr
    again_there = _harness(other, "report", "--campaign", campaign).stdout
    for line in table:
        assert line in again_there
    # a second run exports nothing: every program comes from the cache
    again = _harness(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert "from cache" in again.stdout and "lowering" not in again.stdout + again.stderr


def test_bad_input_is_refused_before_any_export(tmp_path):
    p = _harness(tmp_path, "paper", "--rows", "gpt2")
    assert p.returncode == 2 and p.stderr.count("error:") == 1
    assert "gpt2 is not a row" in p.stderr and "bert-base" in p.stderr
    p = _harness(tmp_path, "paper", "--device", "no-such-phone", "--quick")
    assert p.returncode == 2 and "no-such-phone" in p.stderr
    assert not (tmp_path / "programs").exists()
