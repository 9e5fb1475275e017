"""Graph rewrites at export: the same function in fewer, fatter ops (backend-neutral, done on the eager model).

What changes, per MobileBERT block (NoNorm, bottlenecks, shared key/query bottleneck; other blocks only lose their
dropouts):
- dropout is gone: in an exported eval graph each one is a clone, a copy XNNPACK runs as an op;
- the input bottleneck, the key/query bottleneck and the value projection read the same block input: one linear
  (512 -> 384) and slices; query and key read the key/query bottleneck: one linear (128 -> 256) and slices. A dynamic
  int8 program then quantizes each of those inputs once, not three or two times;
- NoNorm's element-wise affine (x * w + b) is folded into the linear before it (its output rows) wherever that
  linear's output feeds nothing else: the two bottleneck norms entirely, the attention norm into the output
  projection and the input bottleneck (whose output is only that residual), the FFN and output norms into the
  branch linear, leaving one multiply on the residual;
- the attention's 1/sqrt(head size) is folded into the query projection;
- with `carry_scales` (float programs), the residual stream is kept as u with true = s * u + t and (s, t) is folded
  into the input side of the linears that read it, so the FFN and output norms cost no op at all; the last block
  hands back the true hidden state.

Scaling a linear's output rows commutes with per-output-channel (and per-group) weight quantization and leaves its
input, hence its dynamic activation quantization, as it was: the default rewrite is as exact for int8/int4 as for
fp32. Scaling its input side does not, which is why `carry_scales` is for float programs only.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

# carry a residual scale only while every entry stays in this range (no overflow, no lost precision when dividing)
CARRY_RANGE = (2.0**-20, 2.0**20)


def rewrite(model: nn.Module, carry_scales: bool = False, fold_tables: bool = True, copy_first: bool = True) -> nn.Module:
    """A copy of an eval-mode MobileBERT (or a wrapper holding one) with the rewrites above; same outputs.

    fold_tables: fold the embedding norm into the position and segment tables (off when those tables are to be
    quantized row-wise, where a column scale would change their quantization). copy_first=False rewrites the given
    model in place (it must be a private copy already)."""
    from model.blocks import MobileBertBlock
    from model.mobilebert import MobileBertModel

    model = (copy.deepcopy(model) if copy_first else model).eval()
    for name, m in list(model.named_modules()):
        if isinstance(m, nn.Dropout):
            _set(model, name, nn.Identity())
    for body in [m for m in model.modules() if isinstance(m, MobileBertModel)]:
        blocks = list(body.layers)
        if not blocks or not all(_fusable(b) for b in blocks):
            continue
        with torch.no_grad():
            s, t = _embedding(body.embeddings, carry_scales, fold_tables)
            fused = []
            for i, block in enumerate(blocks):
                f, s, t = FusedBlock.from_block(block, s, t, carry_scales, carry_out=carry_scales and i < len(blocks) - 1)
                fused.append(f)
        body.layers = nn.ModuleList(fused)
    return model


def _set(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def _fusable(block) -> bool:
    from model.blocks import MobileBertBlock, NoNorm

    return (isinstance(block, MobileBertBlock) and block.use_bottleneck and block.shared_kq
            and all(isinstance(m, NoNorm) for m in (block.input_bottleneck.norm, block.kq_bottleneck.norm,
                                                     block.attention.norm, block.output_bottleneck.norm,
                                                     *(f.norm for f in block.ffns))))


def _embedding(emb, carry: bool, fold_tables: bool):
    """Fold the embedding's NoNorm away; -> the (s, t) the first block's input carries (None: plain)."""
    from model.blocks import NoNorm

    norm = emb.norm
    if not isinstance(norm, NoNorm):
        return None, None
    w, b = norm.weight.detach().clone(), norm.bias.detach().clone()
    if carry and _carriable(w):
        emb.norm = nn.Identity()
        return w, b
    if fold_tables and emb.project:  # w * (conv(x) + pos + seg) + b, each term scaled; b rides on the positions
        _scale_rows(emb.trigram_conv, w, torch.zeros_like(b))
        emb.position.weight.mul_(w).add_(b)
        emb.token_type.weight.mul_(w)
        emb.norm = nn.Identity()
    return None, None


def _carriable(s: torch.Tensor) -> bool:
    a = s.abs()
    return bool(torch.isfinite(s).all() and (a >= CARRY_RANGE[0]).all() and (a <= CARRY_RANGE[1]).all())


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    lin = nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
    lin.weight.copy_(weight)
    lin.bias.copy_(bias)
    return lin


def _wb(lin: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    bias = lin.bias if lin.bias is not None else torch.zeros(lin.out_features, dtype=lin.weight.dtype)
    return lin.weight.detach().clone(), bias.detach().clone()


def _scale_rows(lin: nn.Linear, w: torch.Tensor, b: torch.Tensor) -> None:
    """In place: lin(x) -> w * lin(x) + b (the output side: quantization-neutral)."""
    lin.weight.mul_(w[:, None])
    if lin.bias is None:
        lin.bias = nn.Parameter(torch.zeros(lin.out_features, dtype=lin.weight.dtype))
    lin.bias.mul_(w).add_(b)


def _input_side(weight, bias, s, t):
    """W, c of a linear reading true = s * u + t -> the W', c' that read u (float programs only)."""
    if s is None:
        return weight, bias
    return weight * s[None, :], bias + weight @ t


class FusedBlock(nn.Module):
    """One MobileBERT block after the rewrites: 12 linears instead of 15, no norm ops, no dropout."""

    def __init__(self, first, qk, out, ups, downs, ob, res_scales, out_scale, heads, narrow, act=torch.relu):
        super().__init__()
        self.act = act  # the FFNs' activation (the config's hidden_act): ReLU in MobileBERT, GELU in its ablations
        self.first, self.qk, self.out = first, qk, out  # [residual | kq | value], [query | key], output projection
        self.ups, self.downs, self.ob = nn.ModuleList(ups), nn.ModuleList(downs), ob
        # a residual multiplier per FFN and for the block input (None: carried, no op)
        for i, r in enumerate(res_scales):
            self.register_buffer(f"res_scale_{i}", r)
        self.n_ffn = len(ups)
        self.register_buffer("out_scale", out_scale)
        self.heads, self.narrow = heads, narrow

    @classmethod
    @torch.no_grad()
    def from_block(cls, block, s_in, t_in, carry: bool, carry_out: bool):
        """-> (fused block, s, t carried out of it: None, None when its output is the true hidden state)."""
        att = block.attention
        heads, d = att.heads, att.head_size
        nn_ib, nn_kq, nn_a = block.input_bottleneck.norm, block.kq_bottleneck.norm, att.norm
        w_a, b_a = nn_a.weight.detach(), nn_a.bias.detach()
        # residual r = nn_a.w * nn_ib(ib(x)): the attention norm's scale lands here, its bias on the projection
        W, c = _wb(block.input_bottleneck.dense)
        w_ib = nn_ib.weight.detach() * w_a
        W_r, c_r = W * w_ib[:, None], (c * nn_ib.weight + nn_ib.bias) * w_a
        W, c = _wb(block.kq_bottleneck.dense)
        W_kq, c_kq = W * nn_kq.weight[:, None], c * nn_kq.weight + nn_kq.bias
        W_v, c_v = _wb(att.value)
        W1 = torch.cat([W_r, W_kq, W_v])
        c1 = torch.cat([c_r, c_kq, c_v])
        first = _linear(*_input_side(W1, c1, s_in, t_in))
        scale = 1.0 / math.sqrt(d)
        Wq, cq = _wb(att.query)
        Wk, ck = _wb(att.key)
        qk = _linear(torch.cat([Wq * scale, Wk]), torch.cat([cq * scale, ck]))
        Wo, co = _wb(att.out)
        out = _linear(Wo * w_a[:, None], co * w_a + b_a)
        # the FFN chain: the residual stream true = s * u + t starts plain after the attention
        s = t = None
        ups, downs, res_scales = [], [], []
        for ffn in block.ffns:
            ups.append(_linear(*_input_side(*_wb(ffn.up), s, t)))
            lin, r, s, t = _residual_step(_wb(ffn.down), ffn.norm, s, t, carry=carry)
            downs.append(lin)
            res_scales.append(r)
        ob = block.output_bottleneck
        W, c = _input_side(*_wb(ob.dense), s, t)
        lin, r_out, s_out, t_out = _residual_step((W, c), ob.norm, s_in, t_in, carry=carry_out)
        return cls(first, qk, out, ups, downs, lin, res_scales, r_out, heads, d * heads, block.ffns[0].act), s_out, t_out

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor):
        b, sl = x.shape[0], x.shape[1]
        n = self.narrow
        y = self.first(x)
        r, kq, v = y[..., :n], y[..., n: 2 * n], y[..., 2 * n:]
        qk = self.qk(kq)
        q, k = qk[..., :n], qk[..., n:]
        dh = n // self.heads
        q = q.reshape(b, sl, self.heads, dh).permute(0, 2, 1, 3)
        kt = k.reshape(b, sl, self.heads, dh).permute(0, 2, 3, 1)
        v = v.reshape(b, sl, self.heads, dh).permute(0, 2, 1, 3)
        probs = torch.softmax(torch.matmul(q, kt) + mask_bias, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, sl, n)
        h = self.out(ctx) + r
        for i in range(self.n_ffn):
            branch = self.downs[i](self.act(self.ups[i](h)))
            scale = getattr(self, f"res_scale_{i}")
            h = branch + (h if scale is None else h * scale)
        return self.ob(h) + (x if self.out_scale is None else x * self.out_scale), probs


def _residual_step(branch_wb, norm, s, t, carry: bool):
    """true_out = w * (L(a) + true_in) + b with true_in = s * u + t.

    -> (the linear L' to run, the residual multiplier (None: none), s', t'): out = L'(a) + mult * u, then
    true_out = s' * out + t' (s' None: out is the true value). Carrying costs no op but divides L by s."""
    W, c = branch_wb
    w, b = norm.weight.detach(), norm.bias.detach()
    s_ = torch.ones_like(w) if s is None else s
    t_ = torch.zeros_like(w) if t is None else t
    s_new = w * s_
    if carry and _carriable(s_new):
        return _linear(W / s_[:, None], c / s_), None, s_new, w * t_ + b
    return _linear(W * w[:, None], c * w + w * t_ + b), s_new, None, None
