"""The building blocks of MobileBERT, one module per idea of the paper (Sun et al. 2020, arXiv:2004.02984).

All of it is export-friendly: plain matmul-softmax attention, an additive float mask, no data-dependent control
flow and no in-place ops on inputs, so XNNPACK can take every matmul, linear and softmax.
"""

from __future__ import annotations

import math

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


class NoNorm(nn.Module):
    """The paper's replacement for LayerNorm: an element-wise affine map, x * weight + bias (no statistics)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm that XNNPACK can take whole when exported.

    XNNPACK has no layer-norm op but has a mean over the last two dims of a 4-d tensor, so under torch.export the
    statistics are taken on a [..., H, 1] view. Eager mode keeps PyTorch's fused kernel: with the written-out form a
    24-layer teacher drifted ~1e-3 from transformers (strongly perturbed weights); eager must match it to 1e-5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_exporting():
            return super().forward(x)
        x4 = x.reshape(*x.shape, 1)
        centered = x4 - x4.mean((-2, -1), keepdim=True)
        var = (centered * centered).mean((-2, -1), keepdim=True)
        return (centered * torch.rsqrt(var + self.eps)).reshape(x.shape) * self.weight + self.bias


def make_norm(config: MobileBertConfig, dim: int, eps: float | None = None) -> nn.Module:
    """NoNorm or LayerNorm. eps=None reproduces the places where transformers leaves LayerNorm at 1e-5."""
    if config.normalization_type == "no_norm":
        return NoNorm(dim)
    return LayerNorm(dim, eps=1e-5 if eps is None else eps)


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
        # Unless Q, K and V all read the bottleneck, values come from the wide block input.
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
            if config.key_query_shared_bottleneck:  # built even when bottleneck attention leaves it unused,
                self.kq_bottleneck = Bottleneck(config, wide, narrow, eps)  # as transformers does
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
