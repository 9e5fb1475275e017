"""Our MobileBERT against transformers' own: checkpoints saved by transformers give the same numbers here, and
checkpoints we save load back into transformers with nothing missing."""

from __future__ import annotations

import pytest
import torch
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.config import MobileBertConfig, get_preset
from model.weights import load_checkpoint, save_checkpoint

ARCHS = {
    "base": "MobileBertModel",
    "sequence_classification": "MobileBertForSequenceClassification",
    "question_answering": "MobileBertForQuestionAnswering",
    "masked_lm": "MobileBertForMaskedLM",
    "pretraining": "MobileBertForPreTraining",
    "next_sentence": "MobileBertForNextSentencePrediction",
}
# transformers' output field -> ours
FIELDS = {"last_hidden_state": "last_hidden_state", "pooler_output": "pooled_output", "logits": "logits",
          "start_logits": "start_logits", "end_logits": "end_logits", "prediction_logits": "prediction_logits",
          "seq_relationship_logits": "seq_relationship_logits"}
TOL = 1e-5


def hf_model(cfg: MobileBertConfig, head: str, seed: int = 0):
    """A transformers model of this shape with every weight random (norms and biases too, so none hide).

    The noise is large on shallow models; on deep ones it stays near the init scale, else 24 NoNorm blocks
    overflow to inf and inf - inf hides every difference."""
    torch.manual_seed(seed)
    hcfg = transformers.MobileBertConfig(**cfg.to_hf_dict())
    m = getattr(transformers, ARCHS[head])._from_config(hcfg, attn_implementation="eager").eval()
    noise = 0.2 if cfg.num_hidden_layers <= 4 else 0.02
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * noise)
    return m


def inputs(cfg: MobileBertConfig, batch: int = 2, seq: int = 12, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    mask[-1, seq // 2 + 1:] = 0  # the last example is padded
    tt = torch.randint(0, cfg.type_vocab_size, (batch, seq), generator=g)
    return ids, mask, tt


def max_errors(ref, ours) -> dict[str, float]:
    """Largest absolute difference per output: every hidden state, every attention map, every head output."""
    assert len(ref.hidden_states) == len(ours.hidden_states) == ours_layers(ours) + 1
    errs = {
        "hidden_states": max((a - b).abs().max().item() for a, b in zip(ref.hidden_states, ours.hidden_states)),
        "attentions": max((a - b).abs().max().item() for a, b in zip(ref.attentions, ours.attentions)),
    }
    for theirs, mine in FIELDS.items():
        if getattr(ref, theirs, None) is not None:
            assert getattr(ours, mine) is not None, f"{mine} missing from our output"
            assert torch.isfinite(getattr(ref, theirs)).all(), f"transformers' {theirs} is not finite"
            errs[mine] = (getattr(ref, theirs) - getattr(ours, mine)).abs().max().item()
    assert all(torch.isfinite(h).all() for h in ref.hidden_states), "transformers' hidden states are not finite"
    return errs


def assert_close(errs: dict[str, float], context=None) -> None:
    assert all(e <= TOL for e in errs.values()), (context, errs)  # `max` would let a nan through


def ours_layers(out) -> int:
    return len(out.attentions)


def compare(cfg: MobileBertConfig, head: str, tmp_path, seq: int = 12, seed: int = 0) -> dict[str, float]:
    ref_model = hf_model(cfg, head, seed)
    ref_model.save_pretrained(tmp_path / "hf")
    ours, got_head = load_checkpoint(tmp_path / "hf")
    assert got_head == head
    ids, mask, tt = inputs(cfg, seq=seq)
    with torch.no_grad():
        ref = ref_model(input_ids=ids, attention_mask=mask, token_type_ids=tt,
                        output_hidden_states=True, output_attentions=True)
        out = ours(ids, attention_mask=mask, token_type_ids=tt, output_hidden_states=True, output_attentions=True)
    assert out.attentions[0].shape == (ids.shape[0], cfg.num_attention_heads, seq, seq)
    return max_errors(ref, out)


def assert_round_trip(cfg: MobileBertConfig, head: str, tmp_path) -> None:
    """Our save loads into transformers with no missing or unexpected keys and the same outputs."""
    ours, _ = load_checkpoint(tmp_path / "hf")
    save_checkpoint(ours, tmp_path / "ours")
    back, info = getattr(transformers, ARCHS[head]).from_pretrained(
        tmp_path / "ours", attn_implementation="eager", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    ids, mask, tt = inputs(cfg)
    with torch.no_grad():
        ref = back.eval()(input_ids=ids, attention_mask=mask, token_type_ids=tt,
                          output_hidden_states=True, output_attentions=True)
        out = ours(ids, attention_mask=mask, token_type_ids=tt, output_hidden_states=True, output_attentions=True)
    assert_close(max_errors(ref, out))


@pytest.mark.parametrize("head", list(ARCHS))
@pytest.mark.parametrize("preset", ["test-tiny", "test-tiny-teacher"])
def test_tiny_presets_match_transformers(preset, head, tmp_path):
    cfg = get_preset(preset)
    errs = compare(cfg, head, tmp_path)
    assert_close(errs)
    assert_round_trip(cfg, head, tmp_path)


@st.composite
def tiny_configs(draw):
    heads = draw(st.sampled_from([1, 2, 4]))
    intra = heads * draw(st.sampled_from([2, 4]))
    use_bottleneck = draw(st.booleans())
    mode = draw(st.sampled_from(["bottleneck_attention", "shared_kq", "both", "plain"]))
    hidden = draw(st.sampled_from([8, 16])) if use_bottleneck and mode != "plain" else intra
    return MobileBertConfig(
        vocab_size=draw(st.integers(8, 40)), embedding_size=draw(st.sampled_from([min(4, hidden), hidden])),
        hidden_size=hidden, intra_bottleneck_size=intra, num_hidden_layers=draw(st.integers(1, 2)),
        num_attention_heads=heads, intermediate_size=draw(st.sampled_from([4, 12])),
        num_feedforward_networks=draw(st.integers(1, 4)),
        normalization_type=draw(st.sampled_from(["no_norm", "layer_norm"])),
        hidden_act=draw(st.sampled_from(["relu", "gelu", "gelu_new", "tanh"])),
        trigram_input=draw(st.booleans()), use_bottleneck=use_bottleneck,
        use_bottleneck_attention=mode in ("bottleneck_attention", "both"),
        key_query_shared_bottleneck=mode in ("shared_kq", "both"),
        classifier_activation=draw(st.booleans()), type_vocab_size=draw(st.integers(1, 3)),
        max_position_embeddings=16, layer_norm_eps=draw(st.sampled_from([1e-12, 1e-5])),
        tie_word_embeddings=draw(st.booleans()), num_labels=draw(st.integers(1, 3)),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=tiny_configs(), head=st.sampled_from(list(ARCHS)), seq=st.integers(1, 10))
def test_random_tiny_configs_match_transformers(cfg, head, seq, tmp_path_factory):
    if head == "question_answering":
        cfg = cfg.replace(num_labels=2)  # start and end
    tmp = tmp_path_factory.mktemp("ckpt")
    errs = compare(cfg, head, tmp, seq=seq)
    assert_close(errs, cfg)
    assert_round_trip(cfg, head, tmp)


def test_legacy_pytorch_model_bin_matches(tmp_path):
    """Older transformers wrote pytorch_model.bin with the tied decoder copies and the position_ids buffer."""
    cfg = get_preset("test-tiny")
    ref_model = hf_model(cfg, "pretraining")
    ref_model.config.save_pretrained(tmp_path)
    sd = dict(ref_model.state_dict())
    sd["cls.predictions.decoder.weight"] = sd["mobilebert.embeddings.word_embeddings.weight"]
    sd["cls.predictions.decoder.bias"] = sd["cls.predictions.bias"]
    sd["mobilebert.embeddings.position_ids"] = torch.arange(cfg.max_position_embeddings)[None]
    torch.save(sd, tmp_path / "pytorch_model.bin")
    ours, head = load_checkpoint(tmp_path)
    assert head == "pretraining"
    ids, mask, tt = inputs(cfg)
    with torch.no_grad():
        ref = ref_model(input_ids=ids, attention_mask=mask, token_type_ids=tt)
        out = ours(ids, mask, tt)
    assert (ref.prediction_logits - out.prediction_logits).abs().max() <= TOL
    assert (ref.seq_relationship_logits - out.seq_relationship_logits).abs().max() <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["mobilebert", "mobilebert-tiny", "ib-bert-large"])
def test_full_presets_match_transformers(preset, tmp_path):
    torch.set_num_threads(1)
    errs = compare(get_preset(preset), "pretraining", tmp_path, seq=32)
    assert_close(errs)
