"""`harness results export|import`: runs move between stores whole (raw samples, device state), idempotently, and
refuse clashes and newer schemas without writing anything; `--format v3` writes ExecuTorch benchmark v3 rows."""

from __future__ import annotations

import json
import subprocess
import sys

from harness.store.db import ResultsStore
from harness.store.record import SCHEMA_VERSION
from tests.support.factories import rec


def cli(*args):
    p = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def test_export_import_roundtrip_is_whole_and_idempotent(tmp_path):
    lab1, central = tmp_path / "lab1", tmp_path / "central"
    runs = [rec("fp32", seed=1, campaign="n7", device_info_before={"temperatures_c": {"cpu": 41.0}}),
            rec("int8", seed=2, campaign="n7"), rec("int8", seed=3, campaign="other")]
    ResultsStore(lab1).add_many(runs)
    rc, out, err = cli("--results", str(lab1), "results", "export", "--campaign", "n7")
    assert rc == 0, err
    f = tmp_path / "runs.jsonl"
    f.write_text(out)
    assert json.loads(out.splitlines()[0]) == {"format": "harness-runs", "schema": SCHEMA_VERSION}
    rc, out, err = cli("--results", str(central), "results", "import", str(f))
    assert rc == 0 and "imported 2 runs" in out, err
    got = {r.run_id: r for r in ResultsStore(central).runs()}
    assert sorted(got) == sorted(r.run_id for r in runs[:2])
    assert got[runs[0].run_id].to_dict() == runs[0].to_dict()  # every field, raw samples and device state included
    rc, out, _ = cli("--results", str(central), "results", "import", str(f))
    assert rc == 0 and "imported 0 runs" in out and "(2 already there)" in out
    assert len(ResultsStore(central).runs()) == 2


def test_clashes_newer_schemas_and_bad_lines_write_nothing(tmp_path):
    store = tmp_path / "s"
    a = rec("fp32", seed=1)
    ResultsStore(store).add(a)
    other = rec("int8", seed=2)
    changed = a.to_dict() | {"status": "invalid"}
    head = json.dumps({"format": "harness-runs", "schema": SCHEMA_VERSION})
    clash = tmp_path / "clash.jsonl"
    clash.write_text("\n".join([head, json.dumps(other.to_dict()), json.dumps(changed)]) + "\n")
    rc, _, err = cli("--results", str(store), "results", "import", str(clash))
    assert rc == 2 and f"run {a.run_id} is already stored with different content" in err
    assert [r.run_id for r in ResultsStore(store).runs()] == [a.run_id]  # `other` was not written either
    newer = tmp_path / "newer.jsonl"
    newer.write_text(json.dumps({"format": "harness-runs", "schema": SCHEMA_VERSION + 1}) + "\n")
    rc, _, err = cli("--results", str(store), "results", "import", str(newer))
    assert rc == 2 and "newer than this harness reads" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(head + "\n{not json\n")
    rc, _, err = cli("--results", str(store), "results", "import", str(bad))
    assert rc == 2 and f"{bad}:2: not a run record" in err and "Traceback" not in err


def test_v3_rows_for_a_dashboard(tmp_path):
    ResultsStore(tmp_path).add(rec("int8", seed=1))
    out = tmp_path / "v3.json"
    rc, _, err = cli("--results", str(tmp_path), "results", "export", "--format", "v3", "--output", str(out))
    assert rc == 0, err
    rows = json.loads(out.read_text())
    assert isinstance(rows, list) and rows and {"benchmark", "model", "metric", "runners"} <= set(rows[0])
