"""BERT-family models (BERT, MiniLM, TinyBERT: model_type `bert`; DistilBERT: `distilbert`) through transformers'
own modeling code: the rivals MobileBERT is measured against.

Nothing is re-implemented here: a checkpoint is loaded with its transformers class (eager attention, which exports
as it is), a preset is a transformers config with the published shape and seeded random weights. `HFModel` gives
the model the call MobileBERT's modules take (input_ids, attention_mask=, token_type_ids=) and returns transformers'
output object, so the exporter's program wrapper reads `.logits` / `.start_logits` from either family.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

# model_type -> transformers class per head. Heads the program contract has no outputs for are refused.
FAMILIES: dict[str, dict[str, str]] = {
    "bert": {"sequence_classification": "BertForSequenceClassification",
             "question_answering": "BertForQuestionAnswering", "masked_lm": "BertForMaskedLM",
             "pretraining": "BertForPreTraining", "base": "BertModel"},
    "distilbert": {"sequence_classification": "DistilBertForSequenceClassification",
                   "question_answering": "DistilBertForQuestionAnswering", "masked_lm": "DistilBertForMaskedLM",
                   "base": "DistilBertModel"},
}
SUPPORTED_MODEL_TYPES = ("mobilebert", *FAMILIES)
ARCHITECTURES = {arch: head for heads in FAMILIES.values() for head, arch in heads.items()}

# Published shapes, random weights. (Hugging Face field names; see each model card / paper.)
_BERT_BASE = {"model_type": "bert", "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
              "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
              "max_position_embeddings": 512, "type_vocab_size": 2}
PRESETS: dict[str, dict[str, Any]] = {
    # Devlin et al. 2019, BERT-base uncased: 12 layers of 768, 12 heads, FFN 3072 (109M with embeddings)
    "bert-base": _BERT_BASE,
    # Sanh et al. 2019, distilbert-base-uncased: BERT-base with 6 layers, no token types, no pooler
    "distilbert-base": {"model_type": "distilbert", "vocab_size": 30522, "dim": 768, "n_layers": 6, "n_heads": 12,
                        "hidden_dim": 3072, "activation": "gelu", "max_position_embeddings": 512},
    # Wang et al. 2020, MiniLM-L6-H384 (nreimers/MiniLM-L6-H384-uncased, the shape of the shipped all-MiniLM-L6-v2)
    "minilm-l6": dict(_BERT_BASE, hidden_size=384, num_hidden_layers=6, intermediate_size=1536),
    # Tiny shapes for tests: built and exported in seconds.
    "test-tiny-bert": dict(_BERT_BASE, vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=64),
    "test-tiny-distilbert": {"model_type": "distilbert", "vocab_size": 128, "dim": 32, "n_layers": 2, "n_heads": 2,
                             "hidden_dim": 64, "max_position_embeddings": 64},
}


def model_type_of(config: dict) -> str | None:
    """config.json's model_type, or the one its architectures imply (older MobileBERT exports carry none)."""
    kind = config.get("model_type")
    if isinstance(kind, str) and kind:
        return kind
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    if not archs or all(a.startswith("MobileBert") for a in archs):
        return "mobilebert"
    return next((t for t, heads in FAMILIES.items() if archs[0] in heads.values()), None)


def unsupported(where: str, config: dict) -> str:
    """The one line for a checkpoint of an architecture the harness does not export."""
    kind = config.get("model_type")
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    what = f"model_type {kind!r}" if kind else f"architectures {', '.join(archs) or 'none'}"
    return (f"{where}: {what} is not supported: the harness exports model_type "
            f"{', '.join(repr(t) for t in SUPPORTED_MODEL_TYPES)} (MobileBERT; BERT, MiniLM, TinyBERT; DistilBERT)")


def _transformers_class(name: str):
    import transformers

    return getattr(transformers, name)


def _config_object(d: dict):
    import transformers

    d = dict(d)
    kind = d.pop("model_type")
    return transformers.AutoConfig.for_model(kind, **d)


class HFModel(nn.Module):
    """A transformers model called the way the exporter calls MobileBERT; `config` is transformers' config."""

    def __init__(self, hf: nn.Module):
        super().__init__()
        _xnnpack_layer_norms(hf)
        self.hf = hf
        self.config = hf.config
        self.takes_token_types = hf.config.model_type != "distilbert"  # DistilBERT has no segment embeddings

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        kwargs = {"attention_mask": attention_mask, "return_dict": True}
        if self.takes_token_types:
            kwargs["token_type_ids"] = token_type_ids
        return self.hf(input_ids, **kwargs)

    def hf_config_dict(self) -> dict:
        """config.json content: model_type and architectures say what the program is."""
        d = self.hf.config.to_dict()
        d["architectures"] = [type(self.hf).__name__]
        return d


def _xnnpack_layer_norms(module: nn.Module) -> None:
    """Every nn.LayerNorm becomes model.blocks.LayerNorm: the same module (weights, eps, eager numerics), which under
    torch.export writes its statistics in ops XNNPACK takes, as MobileBERT's LayerNorm variants do. Left as they are,
    transformers' norms lower to aten.native_layer_norm outside XNNPACK (one portable kernel call each): the rivals
    would be timed with a handicap the MobileBERT rows do not carry."""
    from model.blocks import LayerNorm

    for name, child in list(module.named_children()):
        if type(child) is nn.LayerNorm and child.elementwise_affine and len(child.normalized_shape) == 1:
            new = LayerNorm(child.normalized_shape[0], eps=child.eps)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            _xnnpack_layer_norms(child)


def is_preset(name: str) -> bool:
    return name in PRESETS


def build_preset(name: str, head: str, num_labels: int = 2, seed: int = 0) -> HFModel:
    """The preset's transformers model for `head`, weights drawn by transformers' init from `seed` (untrained)."""
    d = dict(PRESETS[name])
    heads = FAMILIES[d["model_type"]]
    if head not in heads:
        raise ValueError(f"--head {head} does not fit preset {name} ({d['model_type']}): choose one of "
                         f"{', '.join(heads)}")
    if head == "sequence_classification":
        d["num_labels"] = num_labels
    config = _config_object(d)
    config._attn_implementation = "eager"  # exports as it is; the fused kernels' masks do not
    torch.manual_seed(seed)
    return HFModel(_transformers_class(heads[head])(config)).eval()


def read_config(path: Path) -> dict:
    file = Path(path) / "config.json"
    if not file.is_file():
        raise ValueError(f"{file}: no config.json in the checkpoint directory")
    try:
        d = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{file}: not readable JSON ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{file}: not a JSON object")
    return d


def checkpoint_head(path: Path, config: dict) -> str:
    """The head a checkpoint's architectures (or, without any, its weights) name; a head the program contract has
    no outputs for is refused in one line."""
    kind = model_type_of(config)
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    if archs:
        head = ARCHITECTURES.get(archs[0])
        if head is None or archs[0] not in FAMILIES[kind].values():
            fits = ", ".join(FAMILIES[kind].values())
            raise ValueError(f"{path}: architecture {archs[0]} has no program head here: the harness exports "
                             f"{fits} (sequence classification, question answering, masked LM, the bare encoder)")
        return head
    from model.weights import read_weights

    keys = set(read_weights(path))
    if any(k.endswith("qa_outputs.weight") for k in keys):
        return "question_answering"
    if any(k.endswith("classifier.weight") for k in keys):
        return "sequence_classification"
    return "base"


def load_checkpoint(path: str | Path) -> tuple[HFModel, str]:
    """A bert or distilbert checkpoint directory through its transformers class; -> (model, head)."""
    path = Path(path)
    config = read_config(path)
    kind = model_type_of(config)
    if kind not in FAMILIES:
        raise ValueError(unsupported(str(path / "config.json"), config))
    head = checkpoint_head(path, config)
    labels = len(config.get("id2label") or {}) or config.get("num_labels")
    if head == "question_answering" and labels not in (None, 2):
        raise ValueError(f"{path}: a question-answering head has 2 outputs (start, end) but config.json gives "
                         f"{labels} labels: not an extractive QA checkpoint")
    cls = _transformers_class(FAMILIES[kind][head])
    try:
        hf = cls.from_pretrained(str(path), attn_implementation="eager", local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: transformers cannot load it as {cls.__name__} ({first})") from None
    return HFModel(hf).eval(), head


def count_flops(module: nn.Module, inputs: tuple) -> int:
    """FLOPs of one forward, counted by torch (matmuls and attention: 2 per multiply-add; element-wise ops and
    embeddings are not counted, as in the paper's FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*inputs)
    return int(counter.get_total_flops())
