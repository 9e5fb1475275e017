"""What the distillation trainer relies on: gradients reach every used weight, dropout acts only in train mode,
and every block's feature map and attention map come out."""

from __future__ import annotations

import pytest
import torch

from common.errors import BadInput
from model.config import get_preset
from model.mobilebert import MobileBertForPreTraining, MobileBertModel


def test_gradients_reach_every_weight():
    torch.manual_seed(0)
    cfg = get_preset("test-tiny", classifier_activation=True)
    model = MobileBertForPreTraining(cfg).train()
    ids = torch.randint(1, cfg.vocab_size, (2, 8))
    ids[1, 6:] = cfg.pad_token_id
    out = model(ids, attention_mask=(ids != cfg.pad_token_id).long())
    (out.prediction_logits.logsumexp(-1).mean() + out.seq_relationship_logits.sum()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == [], no_grad


def test_padding_embedding_gets_no_gradient_from_the_input_side():
    cfg = get_preset("test-tiny")
    model = MobileBertModel(cfg).train()
    ids = torch.tensor([[5, 6, 7, cfg.pad_token_id, cfg.pad_token_id]])
    model(ids).last_hidden_state.sum().backward()
    grad = model.embeddings.word.weight.grad
    assert torch.all(grad[cfg.pad_token_id] == 0) and grad[5].abs().sum() > 0


def test_dropout_only_in_training():
    torch.manual_seed(0)
    teacher = MobileBertModel(get_preset("test-tiny-teacher"))  # hidden dropout 0.1
    ids = torch.randint(0, 128, (1, 8))
    assert not torch.equal(teacher.train()(ids).last_hidden_state, teacher(ids).last_hidden_state)
    assert torch.equal(teacher.eval()(ids).last_hidden_state, teacher(ids).last_hidden_state)


def test_feature_maps_and_attentions_for_distillation():
    cfg = get_preset("test-tiny")
    out = MobileBertModel(cfg).eval()(torch.randint(0, 128, (3, 10)), output_hidden_states=True,
                                      output_attentions=True)
    assert len(out.hidden_states) == cfg.num_hidden_layers + 1
    assert all(h.shape == (3, 10, cfg.hidden_size) for h in out.hidden_states)
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    assert len(out.attentions) == cfg.num_hidden_layers
    for a in out.attentions:
        assert a.shape == (3, cfg.num_attention_heads, 10, 10)
        assert torch.allclose(a.sum(-1), torch.ones(3, cfg.num_attention_heads, 10))
    plain = MobileBertModel(cfg)(torch.zeros(1, 4, dtype=torch.long))
    assert plain.hidden_states is None and plain.attentions is None


def test_padding_is_not_attended():
    torch.manual_seed(0)
    model = MobileBertModel(get_preset("test-tiny")).eval()
    ids = torch.randint(1, 128, (1, 8))
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        probs = model(ids, attention_mask=mask, output_attentions=True).attentions
    assert all(float(p[..., 5:].max()) == 0.0 for p in probs)


def test_too_long_sequence_is_a_user_error():
    cfg = get_preset("test-tiny")
    with pytest.raises(ValueError, match="sequence length 65 exceeds the model's max_position_embeddings \\(64\\)"):
        MobileBertModel(cfg)(torch.zeros(1, cfg.max_position_embeddings + 1, dtype=torch.long))


def test_question_answering_needs_two_labels():
    from model.mobilebert import MobileBertForQuestionAnswering
    with pytest.raises(ValueError, match="num_labels=2"):
        MobileBertForQuestionAnswering(get_preset("test-tiny", num_labels=3))
