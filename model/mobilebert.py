"""MobileBERT (Sun et al. 2020, arXiv:2004.02984) in plain PyTorch: one module per idea of the paper.

Numerics match transformers' MobileBERT exactly; weights.py maps its checkpoint names to these modules.
Everything here is export-friendly: plain matmul-softmax attention, an additive float mask, no data-dependent
control flow and no in-place ops on inputs, so XNNPACK can take every matmul, linear and softmax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.config import MobileBertConfig

ACT = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}


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


class NoNorm(nn.Module):
    """The paper's replacement for LayerNorm: an element-wise affine map, x * weight + bias (no statistics)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias


def make_norm(config: MobileBertConfig, dim: int, eps: float | None = None) -> nn.Module:
    """NoNorm or LayerNorm. eps=None reproduces the places where transformers leaves LayerNorm at 1e-5."""
    if config.normalization_type == "no_norm":
        return NoNorm(dim)
    return nn.LayerNorm(dim, eps=1e-5 if eps is None else eps)


class TrigramEmbedding(nn.Module):
    """Narrow (128-d) token embeddings; each position sees (next, current, previous) tokens concatenated and
    projected to the hidden size: a kernel-3 convolution written as one Linear. Then + position + segment, norm."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.trigram_input = config.trigram_input
        self.project = config.trigram_input or config.embedding_size != config.hidden_size
        self.word = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.position = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type = nn.Embedding(config.type_vocab_size, config.hidden_size)
        # Always built (transformers' checkpoints carry it even when unused), used when widths differ or trigram.
        width = config.embedding_size * (3 if config.trigram_input else 1)
        self.trigram_conv = nn.Linear(width, config.hidden_size)
        self.norm = make_norm(config, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        x = self.word(input_ids)
        if self.trigram_input:
            following = F.pad(x[:, 1:], (0, 0, 0, 1))  # token t+1, zero past the end
            preceding = F.pad(x[:, :-1], (0, 0, 1, 0))  # token t-1, zero before the start
            x = torch.cat([following, x, preceding], dim=-1)
        if self.project:
            x = self.trigram_conv(x)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = x + self.position(positions) + self.token_type(token_type_ids)
        return self.dropout(self.norm(x))


class Bottleneck(nn.Module):
    """Linear projection between the inter-block width (512) and the intra-block width (128), then norm."""

    def __init__(self, config: MobileBertConfig, d_in: int, d_out: int, eps: float | None):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.norm = make_norm(config, d_out, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.dense(x))


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over narrow heads, output projection, residual add and norm."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        d, self.heads, self.head_size = config.true_hidden_size, config.num_attention_heads, config.attention_head_size
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        # With the shared key/query bottleneck, values come from the wide block input.
        self.value = nn.Linear(d if config.use_bottleneck_attention else config.hidden_size, d)
        self.out = nn.Linear(d, d)
        self.norm = make_norm(config, d, config.layer_norm_eps)
        self.probs_dropout = nn.Dropout(config.attention_probs_dropout_prob)
        # transformers drops out the projection only when there is no output bottleneck to do it later
        self.out_dropout = nn.Dropout(0.0 if config.use_bottleneck else config.hidden_dropout_prob)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_size).transpose(1, 2)

    def forward(self, q_in, k_in, v_in, residual, mask_bias):
        q, k, v = self.split_heads(self.query(q_in)), self.split_heads(self.key(k_in)), self.split_heads(self.value(v_in))
        scores = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(self.head_size)) + mask_bias
        probs = torch.softmax(scores, dim=-1)
        context = torch.matmul(self.probs_dropout(probs), v)
        context = context.transpose(1, 2).reshape(residual.shape[0], residual.shape[1], -1)
        return self.norm(self.out_dropout(self.out(context)) + residual), probs


class FFN(nn.Module):
    """Position-wise feed-forward network with its own residual and norm; MobileBERT stacks several per block."""

    def __init__(self, config: MobileBertConfig, eps: float | None, dropout: float):
        super().__init__()
        self.up = nn.Linear(config.true_hidden_size, config.intermediate_size)
        self.act = ACT[config.hidden_act]
        self.down = nn.Linear(config.intermediate_size, config.true_hidden_size)
        self.norm = make_norm(config, config.true_hidden_size, eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.dropout(self.down(self.act(self.up(x)))) + x)


class MobileBertBlock(nn.Module):
    """One MobileBERT block: input bottleneck -> attention -> stacked FFNs -> output bottleneck (+ block input)."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.use_bottleneck = config.use_bottleneck
        self.bottleneck_attention = config.use_bottleneck_attention
        self.shared_kq = config.use_bottleneck and not config.use_bottleneck_attention and config.key_query_shared_bottleneck
        wide, narrow, eps = config.hidden_size, config.intra_bottleneck_size, config.layer_norm_eps
        if config.use_bottleneck:
            self.input_bottleneck = Bottleneck(config, wide, narrow, eps)
            if config.key_query_shared_bottleneck:
                self.kq_bottleneck = Bottleneck(config, wide, narrow, eps)
        self.attention = MultiHeadAttention(config)
        # transformers builds the last FFN elsewhere, with LayerNorm's default eps (1e-5) and, without an output
        # bottleneck, a dropout: both kept so numerics and training match.
        n, p_last = config.num_feedforward_networks, 0.0 if config.use_bottleneck else config.hidden_dropout_prob
        self.ffns = nn.ModuleList([FFN(config, eps, 0.0) for _ in range(n - 1)] + [FFN(config, None, p_last)])
        if config.use_bottleneck:
            self.output_bottleneck = Bottleneck(config, narrow, wide, eps)
            self.output_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.use_bottleneck:
            q_in = k_in = v_in = residual = x
        else:
            residual = self.input_bottleneck(x)
            if self.bottleneck_attention:
                q_in = k_in = v_in = residual
            elif self.shared_kq:
                q_in = k_in = self.kq_bottleneck(x)
                v_in = x
            else:
                q_in = k_in = v_in = x
        h, probs = self.attention(q_in, k_in, v_in, residual, mask_bias)
        for ffn in self.ffns:
            h = ffn(h)
        if self.use_bottleneck:
            b = self.output_bottleneck
            h = b.norm(self.output_dropout(b.dense(h)) + x)
        return h, probs


def attention_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, S] 1/0 mask -> [B, 1, 1, S] additive bias: 0 where attended, the dtype's minimum where padded."""
    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


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
            pooled = x[:, 0]
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
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # LayerNorm even with NoNorm
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
        return torch.matmul(x, torch.cat([decoder.t(), self.extra.weight], dim=0)) + bias


class _WithHead(nn.Module):
    """Shared plumbing: the body, a head on top, weights initialised once."""

    pooling = True

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.config = config
        self.mobilebert = MobileBertModel(config, add_pooling_layer=self.pooling)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if config.classifier_dropout is None
                                  else config.classifier_dropout)

    def body(self, input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions):
        return self.mobilebert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)


class MobileBertForSequenceClassification(_WithHead):
    """Pooled first token -> dropout -> linear over num_labels."""

    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                output_hidden_states=False, output_attentions=False) -> ModelOutput:
        out = self.body(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        out.logits = self.classifier(self.dropout(out.pooled_output))
        return out


class MobileBertForQuestionAnswering(_WithHead):
    """Per-token linear to (start, end) span logits."""

    pooling = False

    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                output_hidden_states=False, output_attentions=False) -> ModelOutput:
        out = self.body(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        logits = self.qa_outputs(out.last_hidden_state)
        out.start_logits, out.end_logits = logits[..., 0], logits[..., 1]
        return out


class MobileBertForMaskedLM(_WithHead):
    """Vocabulary logits at every position."""

    pooling = False

    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mlm = MaskedLMHead(config, self.mobilebert.embeddings.word)
        init_weights(self)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                output_hidden_states=False, output_attentions=False) -> ModelOutput:
        out = self.body(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        out.logits = self.mlm(out.last_hidden_state)
        return out


class MobileBertForNextSentencePrediction(_WithHead):
    """Pooled first token -> is-next / is-random logits."""

    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.nsp = nn.Linear(config.hidden_size, 2)
        init_weights(self)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                output_hidden_states=False, output_attentions=False) -> ModelOutput:
        out = self.body(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        out.logits = self.nsp(out.pooled_output)
        return out


class MobileBertForPreTraining(_WithHead):
    """Both pre-training heads: masked LM and next sentence."""

    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mlm = MaskedLMHead(config, self.mobilebert.embeddings.word)
        self.nsp = nn.Linear(config.hidden_size, 2)
        init_weights(self)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                output_hidden_states=False, output_attentions=False) -> ModelOutput:
        out = self.body(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        out.prediction_logits = self.mlm(out.last_hidden_state)
        out.seq_relationship_logits = self.nsp(out.pooled_output)
        return out


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
