"""What users run: `harness recipes`, `harness export --quant ...` (manifest proof, clean failures), `harness sensitivity`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from common.errors import BadInput
from program.manifest import ProgramManifest
from tests.support.paths import REPO


def harness(*args: str, results: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_recipes_lists_every_name_with_its_description():
    out = CliRunner().invoke(cli, ["recipes"]).output
    for name in ("fp32", "fp16", "int8", "int8-static", "int4"):
        assert any(line.startswith(name + " ") for line in out.splitlines()), out
    assert "needs --calibration" in out and "--keep-fp32" in out


def test_impossible_group_size_exits_non_zero_with_one_line_and_no_program(tmp_path):
    p = harness("export", "--model", "test-tiny", "--quant", "int4", "--seq-len", "8", results=tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1].startswith("error: --group-size 32 does not divide")
    assert not list(tmp_path.rglob("*.pte")) and not list(tmp_path.rglob("*.tmp*"))


@pytest.mark.parametrize("group, line", [
    ("row", "error: --group-size row: the 48-wide input of mobilebert.embeddings.trigram_conv is not a multiple of 32"),
    ("ROW", "error: --group-size row: the 48-wide input of mobilebert.embeddings.trigram_conv is not a multiple of 32"),
    ("rows", "error: Invalid value for '--group-size': 'rows' is neither a whole number (32, 64, 128) nor `row`"),
    ("-32", "error: --group-size -32: XNNPACK's int4 kernels need a positive multiple of 32 (32, 64, 128) or `row`"),
])
def test_group_size_row_reaches_the_recipe_and_nonsense_is_one_line(tmp_path, group, line):
    """`--group-size row` is per-row int4 all the way to the recipe's width check (test-tiny's rows are too narrow
    for XNNPACK, so the check answers); anything else that is not a number is a usage error."""
    p = harness("export", "--model", "test-tiny", "--quant", "int4", "--group-size", group, "--seq-len", "8",
                results=tmp_path)
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith(line), p.stderr
    assert "Traceback" not in p.stderr and not list(tmp_path.rglob("*.pte"))


@pytest.mark.parametrize("args, msg", [
    (["--quant", "int9"], "unknown recipe --quant 'int9'"),
    (["--quant", "int8", "--keep-fp32", "decoder"], "--keep-fp32 'decoder' matches no module"),
])
def test_bad_quant_flags_raise_user_errors(tmp_path, args, msg):
    r = CliRunner().invoke(cli, ["--results", str(tmp_path), "export", "--model", "test-tiny", "--seq-len", "8", *args])
    assert isinstance(r.exception, BadInput) and msg in str(r.exception)
    assert not list(tmp_path.rglob("*.pte"))


def test_int8_with_int8_embeddings_exports_with_delegation_and_numerics_in_the_manifest(tmp_path):
    r = CliRunner().invoke(cli, ["--results", str(tmp_path), "export", "--model", "test-tiny", "--quant", "int8",
                                 "--quant-embedding", "8w", "--seq-len", "8", "--numerics-samples", "16",
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    m = ProgramManifest.read(tmp_path / "out" / "test-tiny-int8-s8.json")
    assert m.recipe == "int8" and m.recipe_options["quant_embedding"] == "8w"
    d = m.delegation
    assert d["pieces"] >= 1 and d["delegated_by_op"]["aten_linear_default"] > 0
    assert not any(k.startswith(("aten_linear", "aten_bmm", "aten_mm", "aten__softmax")) for k in d["outside_by_op"])
    assert d["outside_by_op"].get("quantized_decomposed_embedding_byte_dtype") == 3  # word, position, token type
    n = m.numerics
    assert n["n"] == 16 and n["task"] and 0.0 <= n["top1_agreement"] <= 1.0 and n["max_rel_logit_error"] > 0
    assert (m.status == "ok") == (n["top1_agreement"] >= 0.99)
    assert "XNNPACK" in r.output and "top-1 agreement" in r.output


def test_sensitivity_command_writes_a_ranked_report(tmp_path):
    r = CliRunner().invoke(cli, ["--results", str(tmp_path), "sensitivity", "--model", "test-tiny", "--seq-len", "16",
                                 "--samples", "20"])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "sensitivity" / "test-tiny-int8-s16.json").read_text())
    assert rep["n"] == 20 and rep["recipe"] == "int8" and rep["task"]
    assert {g["group"] for g in rep["groups"]} >= {"mobilebert.layers.0", "mobilebert.layers.1", "classifier"}
    # the verdict the report holds is the one printed: a suggestion when a --keep-fp32 set reaches the bar, else why not
    assert ("suggestion: " in r.output) == rep["reached"]
    assert ("no --keep-fp32 set reaches" in r.output) == (not rep["reached"])


def test_int8_static_exports_with_its_default_calibration_and_refuses_none(tmp_path):
    """`harness export --quant int8-static` calibrates on 64 real examples by default (it was refused before the
    examples were read, with a message asking for the --calibration it already had); --calibration 0 is one line."""
    p = harness("export", "--model", "test-tiny", "--quant", "int8-static", "--seq-len", "16", "--numerics-samples",
                "8", results=tmp_path)
    assert p.returncode == 0, p.stderr
    manifest = ProgramManifest.read(next((tmp_path / "programs").glob("test-tiny-int8-static-*.json")))
    assert manifest.recipe == "int8-static" and manifest.recipe_options["calibration_examples"] == 64
    p = harness("export", "--model", "test-tiny", "--quant", "int8-static", "--seq-len", "16", "--calibration", "0",
                results=tmp_path / "none")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == "error: --calibration 0: recipe int8-static needs at least 1 example"
