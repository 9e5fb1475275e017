"""numerics.measure runs a real .pte in-process against an eager reference; gate() turns agreement into pass/fail."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from harness.export import numerics
from common.errors import BadInput, ProgramError
from harness.export.recipes import RecipeOptions, get_recipe


class Bag(torch.nn.Module):
    """Masked mean of embeddings -> linear: small enough to lower in seconds, same signature as a program."""

    def __init__(self, per_token: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(50, 32)
        self.mix = torch.nn.Linear(32, 32)
        self.out = torch.nn.Linear(32, 3)
        self.per_token = per_token

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = torch.relu(self.mix(self.emb(input_ids)))
        if self.per_token:
            return (self.out(h),)
        m = attention_mask.unsqueeze(-1).float()
        return (self.out((h * m).sum(1) / m.sum(1)),)


def lower(model, recipe="fp32", batch=1, seq=8) -> bytes:
    ex = (torch.zeros(batch, seq, dtype=torch.long), torch.ones(batch, seq, dtype=torch.long),
          torch.zeros(batch, seq, dtype=torch.long))
    return get_recipe(recipe).lower(model, ex, RecipeOptions()).to_executorch().buffer


def inputs(n=7, seq=8):
    rng = np.random.default_rng(0)
    mask = np.ones((n, seq), dtype=np.int64)
    mask[:, 6:] = 0
    return {"input_ids": rng.integers(1, 50, (n, seq)).astype(np.int64), "attention_mask": mask,
            "token_type_ids": np.zeros((n, seq), dtype=np.int64)}


@pytest.fixture(scope="module")
def bag():
    return Bag().eval()


@pytest.fixture(scope="module")
def fp32_program(bag):
    return lower(bag)


def test_fp32_program_agrees_with_its_eager_model(bag, fp32_program, tmp_path):
    path = tmp_path / "bag.pte"
    path.write_bytes(fp32_program)
    r = numerics.measure(path, bag, inputs())
    assert r["n"] == 7 and r["top1_agreement"] == 1.0
    assert r["max_rel_logit_error"] < 1e-5 and r["mean_rel_logit_error"] <= r["max_rel_logit_error"]
    assert numerics.gate(r, 0.99)[0]


def test_accuracy_of_program_and_reference_against_labels(bag, fp32_program):
    x = inputs()
    with torch.no_grad():
        pred = bag(*(torch.from_numpy(v) for v in x.values()))[0].argmax(-1).numpy()
    labels = pred.copy()
    labels[:3] = (labels[:3] + 1) % 3  # three wrong labels out of seven
    r = numerics.measure(fp32_program, bag, x, labels=labels)
    assert r["accuracy"] == pytest.approx(4 / 7) and r["reference_accuracy"] == pytest.approx(4 / 7)
    with pytest.raises(BadInput, match="2 labels for 7 examples"):
        numerics.measure(fp32_program, bag, x, labels=labels[:2])


def test_int8_program_error_is_small_but_real(bag):
    r = numerics.measure(lower(bag, "int8"), bag, inputs())
    assert 1e-4 < r["mean_rel_logit_error"] < 0.05
    assert r["top1_agreement"] >= 6 / 7


def test_a_different_model_fails_the_gate_with_the_flag_named(bag, fp32_program):
    other = copy.deepcopy(bag)
    with torch.no_grad():
        other.out.weight.neg_()
        other.out.bias.neg_()
    r = numerics.measure(fp32_program, other, inputs())
    assert r["top1_agreement"] < 0.5
    ok, why = numerics.gate(r, 0.99)
    assert not ok and "below --min-agreement 0.99" in why and "7 examples" in why


def test_program_batch_larger_than_one_wraps_the_last_batch(bag):
    r = numerics.measure(lower(bag, batch=2), bag, inputs(n=5))
    assert r["n"] == 5 and r["top1_agreement"] == 1.0 and r["max_rel_logit_error"] < 1e-5


def test_per_token_outputs_count_only_real_tokens():
    model = Bag(per_token=True).eval()
    program = lower(model)
    x = inputs()

    class PaddingDiffers(torch.nn.Module):  # same as `model` except at padded positions
        def forward(self, ids, mask, types):
            out = model(ids, mask, types)[0].clone()
            out[mask == 0] = -out[mask == 0]
            return (out,)

    assert numerics.measure(program, PaddingDiffers(), x)["top1_agreement"] == 1.0


def test_missing_program_and_bad_threshold_are_user_errors(bag, tmp_path):
    with pytest.raises(ProgramError, match="does not exist"):
        numerics.measure(tmp_path / "nope.pte", bag, inputs())
    with pytest.raises(BadInput, match="--min-agreement 1.5"):
        numerics.gate({"top1_agreement": 1.0, "n": 1}, 1.5)


def test_the_fp32_reference_is_computed_once_for_every_recipe_of_a_model(tmp_path, monkeypatch):
    """The fp32, int8 and int4 exports of one model check against the same eager outputs: the first export computes
    and caches them, the next reads them, and the numbers are what the eager model gives when run alongside."""
    from harness.export.exporter import ExportRequest, export

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    calls = []
    real = numerics.eager_outputs
    monkeypatch.setattr(numerics, "eager_outputs", lambda *a: calls.append(1) or real(*a))
    kw = dict(model="test-tiny", seq_len=8, numerics_samples=6)
    fp32 = export(ExportRequest(recipe="fp32", **kw), tmp_path / "results")
    int8 = export(ExportRequest(recipe="int8", **kw), tmp_path / "results")
    assert len(calls) == 1 and len(list((tmp_path / "cache" / "references").glob("numerics-*.npz"))) == 1
    assert int8.manifest.numerics["n"] == fp32.manifest.numerics["n"] == 6
    # the cached outputs give the numbers the eager model gives beside the program
    from harness.export.exporter import ProgramModule, build_model

    model, head, _, _ = build_model(ExportRequest(**kw))
    import data

    task = data.load_task("rotten_tomatoes", split="dev", limit=6)
    enc = data.encode(data.choose_tokenizer(None, None, 1).load(), task.texts, seq_len=8)
    enc["input_ids"] = enc["input_ids"] % int8.manifest.vocab_size
    beside = numerics.measure(int8.program, ProgramModule(model, head), enc)
    assert {k: v for k, v in int8.manifest.numerics.items() if k in beside} == beside
