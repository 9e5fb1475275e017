"""MobileBERT's knowledge-transfer losses: feature maps (FMT), attention (AT), pre-training distillation (PD)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F



def _divide(total: torch.Tensor, n) -> torch.Tensor:
    return total / torch.as_tensor(n, dtype=total.dtype, device=total.device).clamp(min=1)


def _token_mean(per_token: torch.Tensor, mask: torch.Tensor | None, n: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over [B, S] positions, counting only real tokens when a mask is given.

    `n` is the count to divide by when this batch is one rank's shard of a larger one (the global token count).
    """
    if mask is None:
        return per_token.mean() if n is None else _divide(per_token.sum(), n)
    m = mask.to(per_token.dtype)
    return _divide((per_token * m).sum(), m.sum() if n is None else n)


def fmt_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None,
             normalize: bool = False, n_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Feature-map transfer: MSE between one layer's [B, S, H] maps; `normalize` layer-norms both first (no params)."""
    if student.shape != teacher.shape:
        raise ValueError(f"feature maps differ: student {tuple(student.shape)} vs teacher {tuple(teacher.shape)}")
    if normalize:
        student = F.layer_norm(student, student.shape[-1:])
        teacher = F.layer_norm(teacher, teacher.shape[-1:])
    return _token_mean((student - teacher.detach()).pow(2).mean(-1), mask, n_tokens)


def at_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None,
            eps: float = 1e-12, n_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Attention transfer: KL(teacher || student) per head and query over [B, heads, S, S] probabilities."""
    if student.shape != teacher.shape:
        raise ValueError(f"attention maps differ: student {tuple(student.shape)} vs teacher {tuple(teacher.shape)}")
    t = teacher.detach()
    kl = (t * ((t + eps).log() - (student + eps).log())).sum(-1)  # [B, heads, S]
    return _token_mean(kl.mean(1), mask, n_tokens)


def kd_mlm_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0,
                n: torch.Tensor | None = None) -> torch.Tensor:
    """Soft cross-entropy of the student's masked-LM distribution against the teacher's ([N, vocab] rows)."""
    t = temperature
    target = F.softmax(teacher_logits.detach() / t, -1)
    per_row = -(target * F.log_softmax(student_logits / t, -1)).sum(-1)
    return (per_row.mean() if n is None else _divide(per_row.sum(), n)) * t * t


@dataclass
class PDWeights:
    """PD = alpha * MLM + (1 - alpha) * KD + nsp * NSP (the paper uses alpha = 0.5)."""

    alpha: float = 0.5
    nsp: float = 1.0
    temperature: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"--pd-alpha must be in [0, 1] (got {self.alpha})")


def pd_loss(student_mlm: torch.Tensor, teacher_mlm: torch.Tensor, mlm_labels: torch.Tensor,
            student_nsp: torch.Tensor | None = None, nsp_labels: torch.Tensor | None = None,
            w: PDWeights = PDWeights(), n_masked: torch.Tensor | None = None,
            n_rows: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Pre-training distillation on the masked positions (labels != -100). Returns (loss, logged terms).

    `n_masked` / `n_rows` are the global counts when the batch is one rank's shard (see model/distill/dist.py).
    """
    sel = mlm_labels != -100
    if not (sel.any() if n_masked is None else n_masked > 0):
        raise ValueError("no masked position in the batch: raise --mlm-prob or use longer texts")
    n_masked = sel.sum() if n_masked is None else n_masked
    s, t = student_mlm[sel], teacher_mlm[sel]
    mlm = _divide(F.cross_entropy(s, mlm_labels[sel], reduction="sum"), n_masked)
    kd = kd_mlm_loss(s, t, w.temperature, n_masked)
    loss = w.alpha * mlm + (1 - w.alpha) * kd
    terms = {"pd_mlm": mlm.item(), "pd_kd": kd.item()}
    if student_nsp is not None and nsp_labels is not None and w.nsp:
        nsp = _divide(F.cross_entropy(student_nsp, nsp_labels, reduction="sum"),
                      len(nsp_labels) if n_rows is None else n_rows)
        loss = loss + w.nsp * nsp
        terms["pd_nsp"] = nsp.item()
    return loss, terms


@dataclass
class Shapes:
    """What layer-wise transfer needs to know of a model: layers, feature-map width, heads."""

    layers: int
    hidden: int
    heads: int
    vocab: int

    @classmethod
    def of(cls, config) -> "Shapes":
        return cls(config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.vocab_size)


def check_transfer(student: Shapes, teacher: Shapes, wanted: set[str]) -> None:
    """Refuse layer-wise losses the shapes cannot support, naming the dimensions and what is still possible."""
    problems: dict[str, str] = {}
    if student.layers != teacher.layers:
        for k in ("fmt", "at"):
            problems[k] = f"layers {student.layers} vs {teacher.layers}"
    if student.hidden != teacher.hidden:
        problems["fmt"] = f"feature-map width (hidden_size) {student.hidden} vs {teacher.hidden}"
    if student.heads != teacher.heads:
        problems["at"] = (problems.get("at", "") + ("; " if "at" in problems else "")
                          + f"attention heads {student.heads} vs {teacher.heads}")
    if student.vocab != teacher.vocab:
        problems["pd"] = f"vocab_size {student.vocab} vs {teacher.vocab}"
    bad = sorted(wanted & problems.keys())
    if bad:
        possible = sorted({"fmt", "at", "pd"} - problems.keys()) or ["none (task-logit KD only)"]
        detail = "; ".join(f"{k.upper()}: {problems[k]}" for k in bad)
        raise ValueError(f"teacher and student are incompatible for {', '.join(b.upper() for b in bad)} "
                       f"(student vs teacher {detail}); still possible: {', '.join(p.upper() for p in possible)}")
