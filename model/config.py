"""MobileBERT configuration: Hugging Face's MobileBertConfig field names, plus named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


ACTIVATIONS = ("relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "silu", "swish", "tanh")
NORMALIZATIONS = ("no_norm", "layer_norm")


@dataclass
class MobileBertConfig:
    """Shape and training knobs of a MobileBERT-family model; defaults are Hugging Face's, so a sparse config.json
    means what transformers thinks it means."""

    vocab_size: int = 30522
    embedding_size: int = 128  # token embedding width before the trigram projection
    hidden_size: int = 512  # inter-block width (the paper's h_inter)
    intra_bottleneck_size: int = 128  # intra-block width (the paper's h_intra)
    num_hidden_layers: int = 24
    num_attention_heads: int = 4
    intermediate_size: int = 512  # width inside each FFN
    num_feedforward_networks: int = 4  # stacked FFNs per block
    normalization_type: str = "no_norm"
    hidden_act: str = "relu"
    trigram_input: bool = True
    use_bottleneck: bool = True
    use_bottleneck_attention: bool = False  # Q, K and V all from the input bottleneck
    key_query_shared_bottleneck: bool = True  # Q and K from a second bottleneck, V from the block input
    classifier_activation: bool = True  # pooler = dense + tanh (HF default); Google's release uses False
    classifier_dropout: float | None = None
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int | None = 0
    tie_word_embeddings: bool = True
    num_labels: int = 2
    id2label: dict[int, str] | None = field(default=None, repr=False)

    def __post_init__(self):
        self.validate()

    @property
    def true_hidden_size(self) -> int:
        """Width the attention and FFNs work at: the intra-block bottleneck, or the hidden size without one."""
        return self.intra_bottleneck_size if self.use_bottleneck else self.hidden_size

    @property
    def attention_head_size(self) -> int:
        return self.true_hidden_size // self.num_attention_heads

    def validate(self) -> None:
        """Refuse shapes the model cannot be built with, naming the field."""
        if self.normalization_type not in NORMALIZATIONS:
            raise ValueError(f"normalization_type={self.normalization_type!r}: expected one of {NORMALIZATIONS}")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act={self.hidden_act!r}: expected one of {ACTIVATIONS}")
        for name in ("vocab_size", "embedding_size", "hidden_size", "intra_bottleneck_size", "num_hidden_layers",
                     "num_attention_heads", "intermediate_size", "num_feedforward_networks",
                     "max_position_embeddings", "type_vocab_size", "num_labels"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected a positive integer")
        if self.true_hidden_size % self.num_attention_heads:
            raise ValueError(f"num_attention_heads={self.num_attention_heads} does not divide the attention width "
                           f"{self.true_hidden_size} (intra_bottleneck_size or hidden_size)")
        # Without a shared or full bottleneck, Q and K read the block input but are sized for the bottleneck.
        if (self.use_bottleneck and not self.use_bottleneck_attention and not self.key_query_shared_bottleneck
                and self.intra_bottleneck_size != self.hidden_size):
            raise ValueError("use_bottleneck without use_bottleneck_attention or key_query_shared_bottleneck needs "
                           "intra_bottleneck_size == hidden_size")
        if self.embedding_size > self.hidden_size:
            raise ValueError(f"embedding_size={self.embedding_size} exceeds hidden_size={self.hidden_size}: the "
                           "masked-LM head reuses the embeddings as the first embedding_size output dimensions")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id={self.pad_token_id} is outside the vocabulary (vocab_size={self.vocab_size})")
        if self.id2label is not None and len(self.id2label) != self.num_labels:
            raise ValueError(f"id2label has {len(self.id2label)} labels but num_labels={self.num_labels}")

    def to_hf_dict(self) -> dict[str, Any]:
        """config.json content transformers' MobileBertConfig reads back to the same model."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("num_labels", "id2label")}
        labels = self.id2label or {i: f"LABEL_{i}" for i in range(self.num_labels)}
        d["id2label"] = {str(i): name for i, name in labels.items()}
        d["label2id"] = {name: i for i, name in labels.items()}
        d["true_hidden_size"] = self.true_hidden_size
        d["model_type"] = "mobilebert"
        return d

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any]) -> "MobileBertConfig":
        """Read a config.json dict; unknown keys are ignored, missing ones take Hugging Face's defaults."""
        names = {f.name for f in dataclasses.fields(cls)} - {"id2label", "num_labels"}
        kwargs = {k: v for k, v in d.items() if k in names}
        if d.get("id2label"):
            if not isinstance(d["id2label"], dict):
                raise ValueError(f"config.json: id2label must map class numbers to names, not a {type(d['id2label']).__name__}")
            try:
                labels = {int(k): v for k, v in d["id2label"].items()}
            except (TypeError, ValueError):
                bad = next(k for k in d["id2label"] if not str(k).strip().lstrip("-").isdigit())
                raise ValueError(f"config.json: id2label key {bad!r} is not a class number (keys are \"0\", \"1\", ...)"
                               ) from None
            if sorted(labels) != list(range(len(labels))):
                raise ValueError(f"config.json: id2label keys must be 0..{len(labels) - 1}, found {sorted(labels)}")
            kwargs["num_labels"] = len(labels)
            if any(v != f"LABEL_{k}" for k, v in labels.items()):
                kwargs["id2label"] = labels
        elif "num_labels" in d:
            kwargs["num_labels"] = d["num_labels"]
        return cls(**kwargs)

    def replace(self, **changes) -> "MobileBertConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


# Google's released google/mobilebert-uncased (paper Table 1, "MobileBERT"): 24 blocks, 512 inter / 128 intra,
# Q and K from a shared 128-wide bottleneck and V from the 512-wide block input, 4 stacked FFNs of 512.
_MOBILEBERT = MobileBertConfig(classifier_activation=False)

PRESETS: dict[str, MobileBertConfig] = {
    "mobilebert": _MOBILEBERT,
    # Paper Table 1, "MobileBERT_TINY": Q, K and V all read the 128-wide bottleneck, 2 stacked FFNs.
    "mobilebert-tiny": _MOBILEBERT.replace(num_feedforward_networks=2, use_bottleneck_attention=True,
                                           key_query_shared_bottleneck=False),
    # Paper Table 4, "MobileBERT w/o OPT": the same shape with LayerNorm and GELU, before the operational
    # optimizations (NoNorm, ReLU) of section 4.3; and the two single ablations of Table 5.
    "mobilebert-noopt": _MOBILEBERT.replace(normalization_type="layer_norm", hidden_act="gelu"),
    "mobilebert-nonorm-gelu": _MOBILEBERT.replace(hidden_act="gelu"),
    "mobilebert-layernorm-relu": _MOBILEBERT.replace(normalization_type="layer_norm"),
    # The teacher, IB-BERT_LARGE: 1024-wide intra-block, one FFN of 4096, LayerNorm and GELU. Its 512-wide
    # inter-block maps and 4 heads match the student's, so feature-map and attention transfer line up.
    "ib-bert-large": MobileBertConfig(
        intra_bottleneck_size=1024, intermediate_size=4096, num_feedforward_networks=1,
        normalization_type="layer_norm", hidden_act="gelu", use_bottleneck_attention=True,
        key_query_shared_bottleneck=False, hidden_dropout_prob=0.1),
    # Tiny shapes for tests: same structure as the real ones, built in milliseconds.
    "test-tiny": MobileBertConfig(
        vocab_size=128, embedding_size=16, hidden_size=32, intra_bottleneck_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=32, num_feedforward_networks=2, max_position_embeddings=64,
        classifier_activation=False),
    "test-tiny-teacher": MobileBertConfig(
        vocab_size=128, embedding_size=16, hidden_size=32, intra_bottleneck_size=64, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=128, num_feedforward_networks=1, max_position_embeddings=64,
        normalization_type="layer_norm", hidden_act="gelu", use_bottleneck_attention=True,
        key_query_shared_bottleneck=False, hidden_dropout_prob=0.1),
}
# The paper's table at test size (`harness paper --quick`): test-tiny with the same norm/activation changes, and a
# narrower cut standing for MobileBERT-TINY (Q, K and V from the bottleneck, one FFN).
PRESETS.update({
    "test-tiny-noopt": PRESETS["test-tiny"].replace(normalization_type="layer_norm", hidden_act="gelu"),
    "test-tiny-nonorm-gelu": PRESETS["test-tiny"].replace(hidden_act="gelu"),
    "test-tiny-layernorm-relu": PRESETS["test-tiny"].replace(normalization_type="layer_norm"),
    "test-tiny-narrow": PRESETS["test-tiny"].replace(num_feedforward_networks=1, use_bottleneck_attention=True,
                                                     key_query_shared_bottleneck=False),
})


def list_presets() -> list[str]:
    return sorted(PRESETS)


def get_preset(name: str, **overrides) -> MobileBertConfig:
    """A fresh copy of a named preset, with optional field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; valid presets: {', '.join(list_presets())}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(MobileBertConfig)})
    if unknown:
        raise ValueError(f"unknown config field(s) {', '.join(unknown)} for preset {name!r}")
    return PRESETS[name].replace(**overrides)
