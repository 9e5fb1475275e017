"""Strategies on tiny real models: what each stage trains, that frozen layers stay frozen, that losses fall."""

import pytest
import torch

from data import get_tokenizer
from common.errors import BadInput
from model.config import get_preset
from model.distill.loop import LoopConfig, train_loop
from model.distill.strategies import Stage, TransferWeights, plan, stage_loss
from model.distill.trainer import PairBatches
from model.mobilebert import MobileBertForPreTraining
from tests.support.distill_fixtures import WORDS, tiny_vocab


@pytest.fixture()
def setup(tmp_path):
    torch.manual_seed(0)
    teacher = MobileBertForPreTraining(get_preset("test-tiny-teacher")).eval()
    student = MobileBertForPreTraining(get_preset("test-tiny"))
    tok = get_tokenizer(tiny_vocab(tmp_path))
    texts = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(4 + i % 5)) for i in range(40)]
    batches = PairBatches(texts, tok, seq_len=16, batch_size=8, seed=0, mlm_prob=0.15, vocab=128)
    return teacher, student, batches


def _terms(stage, weights, teacher, student, batch):
    with torch.no_grad():
        t_out = teacher(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                        output_hidden_states=True, output_attentions=True)
    return stage_loss(stage, weights)(student, t_out, batch)


def test_plans_follow_the_paper():
    w = TransferWeights()
    assert [s.name for s in plan("auxiliary", 3, w)] == ["auxiliary"]
    assert [s.name for s in plan("joint", 3, w)] == ["transfer", "pd"]
    assert [s.name for s in plan("progressive", 3, w)] == ["layer-1", "layer-2", "layer-3", "pd"]
    assert [s.layers for s in plan("progressive", 3, w)] == [[0], [1], [2], []]
    assert [s.name for s in plan("joint", 3, TransferWeights(pd=0))] == ["transfer"]
    with pytest.raises(ValueError, match="--strategy 'fancy'"):
        plan("fancy", 3, w)


def test_auxiliary_logs_every_term(setup):
    teacher, student, batches = setup
    loss, terms = _terms(plan("auxiliary", 2, TransferWeights())[0], TransferWeights(), teacher, student, batches(0))
    assert {"fmt_1", "fmt_2", "at_1", "at_2", "pd_mlm", "pd_kd", "pd_nsp", "pd", "loss"} <= set(terms)
    expected = sum(terms[k] for k in ("fmt_1", "fmt_2", "at_1", "at_2", "pd"))
    assert terms["loss"] == pytest.approx(expected, rel=1e-5)
    assert loss.requires_grad


def test_progressive_stage_freezes_lower_layers_and_its_loss_falls(setup, tmp_path):
    teacher, student, batches = setup
    stage = plan("progressive", 2, TransferWeights())[1]  # layer-2
    assert stage.prepare(student) == {}
    loss, _ = _terms(stage, TransferWeights(), teacher, student, batches(0))
    loss.backward()
    for name, p in student.named_parameters():
        if name.startswith(("mobilebert.embeddings.", "mobilebert.layers.0.")):
            assert not p.requires_grad and p.grad is None, name
    trained = [p.grad for n, p in student.named_parameters() if n.startswith("mobilebert.layers.1.")]
    assert any(g is not None and g.abs().sum() > 0 for g in trained)
    frozen_before = {n: p.detach().clone() for n, p in student.named_parameters() if not p.requires_grad}
    student.zero_grad()

    def fixed_batch(draw):  # one batch: the stage's own loss must fall on it
        return batches(0)

    def loss_fn(m, b):
        with torch.no_grad():
            t_out = teacher(b["input_ids"], b["attention_mask"], b["token_type_ids"],
                            output_hidden_states=True, output_attentions=True)
        return stage_loss(stage, TransferWeights())(m, t_out, b)

    before = _terms(stage, TransferWeights(), teacher, student, batches(0))[1]
    train_loop(student, loss_fn, fixed_batch, LoopConfig(steps=30, batch_size=8, lr=3e-3, warmup_frac=0.0),
               tmp_path / "run", lambda m, d: None, desc="layer-2")
    after = _terms(stage, TransferWeights(), teacher, student, batches(0))[1]
    assert after["fmt_2"] < 0.85 * before["fmt_2"] and after["at_2"] < before["at_2"]
    for n, p in student.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), f"{n} moved while frozen"


def test_progressive_reduced_lr_instead_of_freezing(setup):
    _, student, _ = setup
    stage = plan("progressive", 2, TransferWeights(), below_lr_scale=0.1)[1]
    scales = stage.prepare(student)
    assert scales == {"mobilebert.embeddings.": 0.1, "mobilebert.layers.0.": 0.1}
    assert all(p.requires_grad for p in student.parameters())
    assert plan("progressive", 2, TransferWeights(), below_lr_scale=0.1)[0].prepare(student) == {}


def test_pair_batches_are_seeded_and_masked(setup):
    _, _, batches = setup
    a, b = batches(3), batches(3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(batches(4)["input_ids"], a["input_ids"])
    targets = a["mlm_labels"] != -100
    assert targets.any(1).all()  # every row has something to predict
    assert set(a["nsp_labels"].tolist()) <= {0, 1}
    assert (a["token_type_ids"] == 1).any()  # sentence B is there


def test_joint_separates_layerwise_transfer_from_pd(setup):
    teacher, student, batches = setup
    w = TransferWeights()
    transfer, pd = plan("joint", 2, w)
    _, t_terms = _terms(transfer, w, teacher, student, batches(1))
    _, p_terms = _terms(pd, w, teacher, student, batches(1))
    assert {"fmt_1", "fmt_2", "at_1", "at_2"} <= set(t_terms) and not any(k.startswith("pd") for k in t_terms)
    assert {"pd_mlm", "pd_kd", "pd_nsp"} <= set(p_terms) and not any(k.startswith(("fmt", "at")) for k in p_terms)


def test_lamb_scales_each_update_by_the_trust_ratio():
    from model.distill.optim import Lamb

    w = torch.nn.Parameter(torch.full((4,), 3.0))
    opt = Lamb([w], lr=0.1, weight_decay=0.0)
    w.grad = torch.tensor([1.0, -1.0, 1.0, -1.0])
    opt.step()
    # Adam's first update is sign(g) (norm 2); LAMB rescales it to ||w|| = 6, so each entry moves by lr * 3.
    assert torch.allclose(w.detach(), torch.tensor([2.7, 3.3, 2.7, 3.3]), atol=1e-5)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = (w - 1.0).pow(2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
