"""harness export: a real program and manifest, cached, numerically the eager model, lowered to XNNPACK."""

from __future__ import annotations

import json

import numpy as np
import torch

from harness.export import delegation
from harness.export.exporter import ExportRequest, ProgramModule, build_model, example_inputs, export
from program.manifest import ProgramManifest, sha256_file


def test_manifest_describes_the_program(tiny_export):
    _, res = tiny_export
    m = ProgramManifest.read(res.program.with_suffix(".json"))
    assert res.program.stat().st_size == m.program_bytes
    assert sha256_file(res.program) == m.program_sha256
    assert [i.name for i in m.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(i.shape == [1, 16] and i.dtype == "int64" for i in m.inputs)
    assert m.recipe == "fp32" and m.model == "test-tiny" and m.random_weights
    assert m.versions["executorch"] == "1.5.1" and m.versions["torch"].startswith("2.13.0")
    assert m.export_seconds > 0 and m.delegation["pieces"] >= 1
    # fp32 program vs fp32 eager on real text: must agree perfectly
    assert m.numerics["n"] == 16 and m.status == "ok"


def test_no_heavy_op_left_outside_xnnpack(tiny_export):
    _, res = tiny_export
    d = res.manifest.delegation
    assert delegation.heavy_ops_outside(d) == {}
    assert d["delegated_by_op"].get("aten_linear_default", 0) > 0
    assert d["delegated_by_op"].get("aten__softmax_default", 0) > 0


def test_heavy_op_gate_refuses_partial_lowering():
    import pytest

    from common.errors import ExportError

    summary = {"outside_by_op": {"aten_linear_default": 3, "aten_embedding_default": 1}}
    with pytest.raises(ExportError, match="aten_linear_default x3"):
        delegation.check(summary, allow_partial=False)
    delegation.check(summary, allow_partial=True)


def test_program_matches_eager(tiny_export):
    from executorch.runtime import Runtime

    _, res = tiny_export
    model, head, _, _ = build_model(ExportRequest(model="test-tiny"))
    ref = ProgramModule(model, head)
    ids, mask, types = example_inputs(16, res.manifest.vocab_size, seed=7)
    mask[0, 12:] = 0  # padding must be handled identically
    program = Runtime.get().load_program(str(res.program))
    got = program.load_method("forward").execute([ids, mask, types])[0]
    with torch.no_grad():
        want = ref(ids, mask, types)[0]
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)


def test_second_export_comes_from_cache_and_out_dir_publishes(tiny_export, tmp_path):
    results, first = tiny_export
    again = export(ExportRequest(model="test-tiny", seq_len=16, numerics_samples=16, out_dir=tmp_path), results)
    assert again.cached
    assert again.program == tmp_path / "test-tiny-fp32-s16.pte"
    assert sha256_file(again.program) == first.manifest.program_sha256
    assert json.loads((tmp_path / "test-tiny-fp32-s16.json").read_text())["cache_key"] == first.manifest.cache_key
    assert not list(tmp_path.glob("*.tmp*"))


def test_last_export_of_the_same_size_gives_the_estimate(tiny_export):
    from harness.export.exporter import last_export_seconds

    results, res = tiny_export
    m, cache = res.manifest, results / "programs"
    assert last_export_seconds(cache, "fp32", m.config, 16) == m.export_seconds > 0
    assert last_export_seconds(cache, "int8", m.config, 16) is None  # another recipe
    assert last_export_seconds(cache, "fp32", m.config, 32) is None  # another length
    assert last_export_seconds(cache, "fp32", {**m.config, "num_hidden_layers": 24}, 16) is None  # another size


def test_an_export_leaves_no_lowered_program_alive(tmp_path):
    """ExecuTorch keeps the last refused node (XNNPACK's WhyNoPartition) and an lru_cache of nodes, and through
    them the whole ExportedProgram with its weights: ~200 MB per full-size export stayed resident in a process that
    exports several (a pool worker, a sweep) until the lowering let them go."""
    import gc

    from torch.export import ExportedProgram

    def live() -> int:
        gc.collect()
        return sum(isinstance(o, ExportedProgram) for o in gc.get_objects())

    before = live()
    for recipe in ("fp32", "int8"):
        res = export(ExportRequest(model="test-tiny", recipe=recipe, seq_len=8, numerics_task=None), tmp_path)
        del res
        assert live() <= before, recipe
