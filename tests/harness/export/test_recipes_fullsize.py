"""Full 24-layer MobileBERT through int8 and int4 (opt-in: HARNESS_SLOW=1): the issue's size, memory and delegation
bars. Export time is a benchmark figure (benchmarks/quant_table.py), not asserted here: this machine is shared."""

from __future__ import annotations

import pytest

from harness.export.exporter import ExportRequest, build_model, export
from harness.export.recipes import RecipeOptions


@pytest.mark.slow
@pytest.mark.parametrize("recipe, opts", [("int8", RecipeOptions()), ("int4", RecipeOptions(quant_embedding="4w"))])
def test_full_mobilebert_exports_fully_delegated(tmp_path, recipe, opts):
    res = export(ExportRequest(model="mobilebert", recipe=recipe, seq_len=128, options=opts, numerics_samples=32),
                 tmp_path)
    m = res.manifest
    assert not any(k.startswith(("aten_linear", "aten_bmm", "aten_mm", "aten__softmax")) for k in m.delegation["outside_by_op"])
    assert m.export_peak_rss_mb <= 3000
    if recipe == "int4":  # an fp32 program is ~4 bytes per parameter
        fp32_bytes = 4 * sum(p.numel() for p in build_model(ExportRequest(model="mobilebert"))[0].parameters())
        assert m.program_bytes <= 0.3 * fp32_bytes
