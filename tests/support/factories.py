"""The records, manifests and checkpoints tests build by hand, in one place (import them from here only).

- `rec`: a stored run of the default comparable kind (host, native, seq 128, a manifest), campaign and timing preset
  named; `manifest` builds its manifest (a checkpoint makes another model), `acc` an accuracy entry.
- `run`: a device run as reports group it (device, threads, emulated, memory, load and first-inference times).
- `make_record`: a store row with the run id given, for the store's own tests (and its writer subprocesses).
- `save_pretrained_checkpoint`: a tiny MobileBERT written by transformers itself.

Latencies are fixed-seed lognormal draws, so a test's numbers are the same on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.run.stats import summarize
from harness.store.record import RunRecord, model_identity

_ids = iter(range(10**6))


def manifest(recipe: str, checkpoint: str | None = None, sha: str | None = None, **opts) -> dict:
    return {"model": "checkpoint" if checkpoint else "mobilebert", "head": "sequence_classification", "num_labels": 2,
            "recipe": recipe, "checkpoint": checkpoint, "checkpoint_sha256": sha, "random_weights": checkpoint is None,
            "recipe_options": {"group_size": 32, "quant_embedding": None, "keep_fp32": [], **opts}}


def rec(recipe="fp32", ms=10.0, seed=0, campaign="c1", timing="default", accuracy=None, n=60, spread=0.02,
        **kw) -> RunRecord:
    """A host run of `recipe` whose latencies centre on `ms`, with a manifest (so a model identity) and a campaign."""
    m = kw.pop("manifest", None) or manifest(recipe)
    lat = np.random.default_rng(seed).lognormal(np.log(ms), spread, n).tolist()
    i = next(_ids)
    return RunRecord(run_id=f"r{i:05d}", created_at=f"2026-12-01T10:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
                     status="ok", device=kw.pop("device", "host"), model=m["model"], recipe=recipe, seq_len=128,
                     runner="native", threads=2, manifest=m, random_weights=m["random_weights"],
                     model_id=model_identity(m), campaign=campaign, timing=timing, latencies_ms=lat,
                     latency=summarize(lat), accuracy=accuracy, **kw)


def acc(value, n=200):
    return {"task": "rotten_tomatoes", "n": n, "metric": "accuracy", "value": value}


_counter = iter(range(10**6))


def run(recipe="fp32", device="pixel8pro", median_ms=12.0, seed=0, status="ok", n=40, emulated=False, threads=4,
        accuracy=None, random=True, **kw) -> RunRecord:
    """A RunRecord whose latencies are fixed-seed lognormal draws around median_ms."""
    lat = np.random.default_rng(seed).lognormal(np.log(median_ms), 0.05, n).tolist() if status != "failed" else []
    i = next(_counter)
    return RunRecord(
        run_id=f"{recipe}-{device}-{i:04d}", created_at=f"2026-11-24T04:00:{i % 60:02d}Z", status=status,
        device=device, model="mobilebert", recipe=recipe, seq_len=128, runner="native", threads=threads,
        emulated=emulated, random_weights=random, latencies_ms=lat, latency=summarize(lat) if lat else {},
        load_ms=40.0 + seed, first_inference_ms=20.0 + seed,
        memory={"peak_rss_mb": 90.0 + seed, "peak_rss_method": "native runner process, getrusage",
                "program_mb": 25.0 if recipe == "fp32" else 7.0},
        accuracy=accuracy, flags=(["emulated"] if emulated else []) + kw.pop("flags", []), **kw,
    )


def make_record(run_id: str, recipe="fp32", device="host", status="ok", seed=0, **kw) -> RunRecord:
    """A store row named `run_id`: every kind of field filled, so a round trip shows what the store loses."""
    lat = np.random.default_rng(seed).lognormal(np.log(12.0), 0.1, 30).tolist()
    return RunRecord(
        run_id=run_id, created_at=f"2026-11-24T04:{seed % 60:02d}:00Z", status=status, device=device,
        model="mobilebert-tiny", recipe=recipe, seq_len=16, runner="native", threads=2,
        program_sha256="ab" * 32, latencies_ms=lat, latency=summarize(lat),
        memory={"peak_rss_mb": 20.5, "method": "getrusage"}, device_info_before={"cpus": [{"cur_khz": 1}]}, **kw,
    )


def save_pretrained_checkpoint(path: Path, head: str = "QuestionAnswering", vocab_size: int = 30522) -> Path:
    """A tiny MobileBERT written by transformers itself: config.json + model.safetensors, no tokenizer files."""
    import torch
    import transformers

    cfg = transformers.MobileBertConfig(
        vocab_size=vocab_size, embedding_size=16, hidden_size=32, intra_bottleneck_size=16, true_hidden_size=16,
        num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, num_feedforward_networks=2,
        max_position_embeddings=64)
    torch.manual_seed(0)
    getattr(transformers, f"MobileBertFor{head}")(cfg).save_pretrained(path)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    return path
