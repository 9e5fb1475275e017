"""The fp32 eager reference a run's agreement is measured against is computed once per model and inputs, then read
from a content-addressed cache: the second run of a program (or of another recipe of the same checkpoint) does not
rebuild the eager model, and gets the same numbers."""

from __future__ import annotations

import numpy as np

from harness.run import reference


def test_the_reference_is_computed_once_then_read_back(tiny_export, tmp_path, monkeypatch):
    from program.manifest import ProgramManifest

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    _, res = tiny_export
    manifest = ProgramManifest.read(res.program.with_suffix(".json"))
    rng = np.random.default_rng(0)
    enc = {"input_ids": rng.integers(0, 60, (5, 16)), "attention_mask": np.ones((5, 16), np.int64),
           "token_type_ids": np.zeros((5, 16), np.int64)}
    first = reference.cached_outputs(manifest, enc)
    assert first is not None and len(list((tmp_path / "cache" / "references").glob("*.npz"))) == 1

    def rebuilt(*a, **k):
        raise AssertionError("the eager model was rebuilt although its outputs are cached")
    monkeypatch.setattr(reference, "reference_module", rebuilt)
    again = reference.cached_outputs(manifest, enc)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    other = dict(enc, input_ids=enc["input_ids"][::-1].copy())  # other inputs: another key, computed afresh
    monkeypatch.undo()
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    assert reference.cached_outputs(manifest, other) is not None
    assert len(list((tmp_path / "cache" / "references").glob("*.npz"))) == 2


def test_a_damaged_cache_entry_is_computed_again(tiny_export, tmp_path, monkeypatch):
    from program.manifest import ProgramManifest

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    _, res = tiny_export
    manifest = ProgramManifest.read(res.program.with_suffix(".json"))
    enc = {"input_ids": np.ones((2, 16), np.int64), "attention_mask": np.ones((2, 16), np.int64),
           "token_type_ids": np.zeros((2, 16), np.int64)}
    good = reference.cached_outputs(manifest, enc)
    [entry] = (tmp_path / "cache" / "references").glob("*.npz")
    entry.write_bytes(b"not an npz")
    again = reference.cached_outputs(manifest, enc)
    assert all(np.array_equal(a, b) for a, b in zip(good, again))
