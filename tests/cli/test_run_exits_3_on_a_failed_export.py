"""`harness run` that exports a program failing its numerics gate measures it (the error line says why it failed) and
exits 3, as `harness export` does (issue #28's untrained 4-layer int4 program: 'gate passed', exit 0)."""

from __future__ import annotations

import dataclasses

from click.testing import CliRunner

from harness import cli as cli_module
from harness.commands import run as run_module


def test_a_run_of_an_export_that_failed_its_gate_exits_3(tiny_export, tmp_path, monkeypatch):
    _, res = tiny_export
    failed = dataclasses.replace(res, manifest=dataclasses.replace(
        res.manifest, status="failed", status_reason="median relative logit error 0.25 on 16 examples is over ..."))
    monkeypatch.setattr(run_module, "do_export", lambda req, results: failed)
    out = CliRunner().invoke(cli_module.cli, ["--results", str(tmp_path / "r"), "run", "--model", "test-tiny",
                                              "--seq-len", "16", "--timing", "quick", "--iterations", "10"],
                             standalone_mode=False)
    assert out.exit_code == 3 or out.return_value == 3, out.output
    monkeypatch.setattr(run_module, "do_export", lambda req, results: res)  # the same program, its gate passed
    out = CliRunner().invoke(cli_module.cli, ["--results", str(tmp_path / "r"), "run", "--model", "test-tiny",
                                              "--seq-len", "16", "--timing", "quick", "--iterations", "10"],
                             standalone_mode=False)
    assert out.exit_code == 0 and out.return_value in (None, 0), out.output
