"""MobileBERT (Sun et al. 2020, arXiv:2004.02984) and its task heads, assembled from model/blocks.py.

Numerics match transformers' MobileBERT exactly; weights.py maps its checkpoint names to these modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import ACT, LayerNorm, MobileBertBlock, NoNorm, TrigramEmbedding, attention_bias
from model.config import MobileBertConfig


@dataclass
class ModelOutput:
    """What a forward returns; fields a model does not produce stay None."""

    last_hidden_state: torch.Tensor | None = None
    pooled_output: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # sequence classification, masked LM, next sentence
    start_logits: torch.Tensor | None = None
    end_logits: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None  # pre-training: masked LM
    seq_relationship_logits: torch.Tensor | None = None  # pre-training: next sentence
    hidden_states: tuple[torch.Tensor, ...] | None = None  # embedding output, then each block's output
    attentions: tuple[torch.Tensor, ...] | None = None  # per block: [batch, heads, seq, seq] probabilities


# torch.export flattens outputs through pytree: registering the dataclass lets a model be exported as it is.
torch.export.register_dataclass(ModelOutput, serialized_type_name="harness.model.ModelOutput")


class MobileBertModel(nn.Module):
    """Embeddings and the stack of blocks; the pooler takes the first token (dense + tanh if configured)."""

    def __init__(self, config: MobileBertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = TrigramEmbedding(config)
        self.layers = nn.ModuleList([MobileBertBlock(config) for _ in range(config.num_hidden_layers)])
        self.add_pooling_layer = add_pooling_layer
        if add_pooling_layer and config.classifier_activation:
            self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        if type(self) is MobileBertModel:
            init_weights(self)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                output_hidden_states=False, output_attentions=False) -> ModelOutput:
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"sequence length {input_ids.shape[1]} exceeds the model's max_position_embeddings "
                           f"({self.config.max_position_embeddings})")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)
        bias = attention_bias(attention_mask, x.dtype)
        hidden, attentions = [x], []
        for block in self.layers:
            x, probs = block(x, bias)
            hidden.append(x)
            attentions.append(probs)
        pooled = None
        if self.add_pooling_layer:
            pooled = x[:, :1].reshape(x.shape[0], x.shape[2])  # first token; a slice XNNPACK takes, unlike select
            if self.config.classifier_activation:
                pooled = torch.tanh(self.pooler(pooled))
        return ModelOutput(
            last_hidden_state=x,
            pooled_output=pooled,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )


class MaskedLMHead(nn.Module):
    """Transform then score against the vocabulary. The 128-d input embeddings are reused as the first 128 output
    dimensions; a separate [hidden - 128, vocab] matrix covers the rest."""

    def __init__(self, config: MobileBertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT[config.hidden_act]
        self.norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # LayerNorm even with NoNorm
        self.extra = nn.Linear(config.vocab_size, config.hidden_size - config.embedding_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.tied = config.tie_word_embeddings
        if self.tied:
            self.word_embeddings = [word_embeddings]  # a list, so the shared table is not registered twice
        else:
            # Untied, transformers scores with its decoder's own weight and bias and leaves `bias` unused;
            # all three are kept so checkpoints and parameter counts match.
            self.decoder_weight = nn.Parameter(torch.empty(config.vocab_size, config.embedding_size))
            self.decoder_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.act(self.transform(x)))
        if self.tied:
            decoder, bias = self.word_embeddings[0].weight, self.bias
        else:
            decoder, bias = self.decoder_weight, self.decoder_bias
        if torch.compiler.is_exporting():
            # XNNPACK refuses a matmul whose weight is computed at run time (the concatenation below), which would
            # leave the largest matmul of the model outside it: two products on slices instead.
            e = decoder.shape[1]
            return F.linear(x[..., :e], decoder) + torch.matmul(x[..., e:], self.extra.weight) + bias
        # Eager keeps transformers' summation order: the split form drifts by ~1e-5 on a 24-layer teacher.
        return torch.matmul(x, torch.cat([decoder.t(), self.extra.weight], dim=0)) + bias


class _WithHead(nn.Module):
    """The body with a task head on top: subclasses build the head and fill its fields of the output."""

    pooling = True

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.config = config
        self.mobilebert = MobileBertModel(config, add_pooling_layer=self.pooling)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                output_hidden_states=False, output_attentions=False) -> ModelOutput:
        out = self.mobilebert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        self.head(out)
        return out


class MobileBertForSequenceClassification(_WithHead):
    """Pooled first token -> dropout -> linear over num_labels."""

    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if config.classifier_dropout is None
                                  else config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self)

    def head(self, out: ModelOutput) -> None:
        out.logits = self.classifier(self.dropout(out.pooled_output))


class MobileBertForQuestionAnswering(_WithHead):
    """Per-token linear to (start, end) span logits."""

    pooling = False

    def __init__(self, config: MobileBertConfig):
        if config.num_labels != 2:
            raise ValueError(f"question answering needs num_labels=2 (start, end), got {config.num_labels}")
        super().__init__(config)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self)

    def head(self, out: ModelOutput) -> None:
        logits = self.qa_outputs(out.last_hidden_state)
        out.start_logits, out.end_logits = logits[..., 0], logits[..., 1]


class MobileBertForMaskedLM(_WithHead):
    """Vocabulary logits at every position."""

    pooling = False

    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mlm = MaskedLMHead(config, self.mobilebert.embeddings.word)
        init_weights(self)

    def head(self, out: ModelOutput) -> None:
        out.logits = self.mlm(out.last_hidden_state)


class MobileBertForNextSentencePrediction(_WithHead):
    """Pooled first token -> is-next / is-random logits."""

    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.nsp = nn.Linear(config.hidden_size, 2)
        init_weights(self)

    def head(self, out: ModelOutput) -> None:
        out.logits = self.nsp(out.pooled_output)


class MobileBertForPreTraining(_WithHead):
    """Both pre-training heads: masked LM and next sentence."""

    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mlm = MaskedLMHead(config, self.mobilebert.embeddings.word)
        self.nsp = nn.Linear(config.hidden_size, 2)
        init_weights(self)

    def head(self, out: ModelOutput) -> None:
        out.prediction_logits = self.mlm(out.last_hidden_state)
        out.seq_relationship_logits = self.nsp(out.pooled_output)


HEADS = {
    "base": MobileBertModel,
    "sequence_classification": MobileBertForSequenceClassification,
    "question_answering": MobileBertForQuestionAnswering,
    "masked_lm": MobileBertForMaskedLM,
    "pretraining": MobileBertForPreTraining,
    "next_sentence": MobileBertForNextSentencePrediction,
}


@torch.no_grad()
def init_weights(model: nn.Module) -> None:
    """BERT's initialisation, as transformers does it: normal(0, initializer_range) weights, zero biases,
    unit norms, a zero padding embedding."""
    std = model.config.initializer_range
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.weight.normal_(0.0, std)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.Embedding):
            m.weight.normal_(0.0, std)
            if m.padding_idx is not None:
                m.weight[m.padding_idx].zero_()
        elif isinstance(m, (nn.LayerNorm, NoNorm)):
            m.weight.fill_(1.0)
            m.bias.zero_()
        elif isinstance(m, MaskedLMHead):
            m.bias.zero_()
            if not m.tied:
                m.decoder_weight.normal_(0.0, std)
                m.decoder_bias.zero_()
