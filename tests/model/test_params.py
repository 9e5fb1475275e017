"""Parameter counts equal transformers' for the same config, for every preset and head."""

from __future__ import annotations

import pytest
import torch
import transformers

from model.config import get_preset, list_presets
from model.mobilebert import HEADS
from model.params import PAPER, count_parameters, table

ARCH = {"base": "MobileBertModel", "sequence_classification": "MobileBertForSequenceClassification",
        "question_answering": "MobileBertForQuestionAnswering", "masked_lm": "MobileBertForMaskedLM",
        "pretraining": "MobileBertForPreTraining", "next_sentence": "MobileBertForNextSentencePrediction"}


@pytest.mark.parametrize("preset", list_presets())
def test_counts_equal_transformers(preset):
    cfg = get_preset(preset)
    hf_cfg = transformers.MobileBertConfig(**cfg.to_hf_dict())
    for head, cls in HEADS.items():
        with torch.device("meta"):  # full-size presets: shapes only, no memory
            ours = count_parameters(cls(cfg))
            theirs = sum(p.numel() for p in getattr(transformers, ARCH[head])(hf_cfg).parameters())
        assert ours == theirs, (preset, head)


def test_untied_masked_lm_counts_its_decoder():
    cfg = get_preset("test-tiny")
    tied = count_parameters(HEADS["masked_lm"](cfg))
    untied = count_parameters(HEADS["masked_lm"](cfg.replace(tie_word_embeddings=False)))
    assert untied - tied == cfg.vocab_size * cfg.embedding_size + cfg.vocab_size


def test_table_lists_paper_presets():
    t = table()
    for preset, paper in PAPER.items():
        assert f"| {preset} |" in t and f"{paper / 1e6:.1f}M" in t
    assert "| mobilebert | 24.58M |" in t  # google/mobilebert-uncased's body
