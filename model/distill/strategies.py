"""The paper's three ways to schedule the transfer losses: auxiliary, joint, progressive (Sun et al. 2020, §4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from model.distill.losses import PDWeights, at_loss, fmt_loss, pd_loss

STRATEGIES = ("auxiliary", "joint", "progressive")


@dataclass
class TransferWeights:
    """Weights of each term; a zero weight drops the term (and its shape requirement)."""

    fmt: float = 1.0
    at: float = 1.0
    pd: float = 1.0
    fmt_normalize: bool = False  # layer-norm both feature maps before the MSE
    pd_weights: PDWeights = field(default_factory=PDWeights)

    def wanted(self) -> set[str]:
        return {k for k in ("fmt", "at", "pd") if getattr(self, k)}


@dataclass
class Stage:
    """One training stage: which layers' transfer terms, whether PD is on, which parameters learn."""

    name: str
    layers: list[int]  # 0-based blocks whose FMT/AT terms are in the loss
    pd: bool
    below_lr_scale: float | None = None  # progressive: lr multiplier for everything below the trained block

    def prepare(self, student: torch.nn.Module) -> dict[str, float]:
        """Set requires_grad for this stage; returns the lr_scale map the optimizer needs."""
        for p in student.parameters():
            p.requires_grad_(True)
        if self.below_lr_scale is None:
            return {}
        below = ["mobilebert.embeddings."] + [f"mobilebert.layers.{j}." for j in range(self.layers[0])]
        if self.below_lr_scale == 0.0:
            for name, p in student.named_parameters():
                if any(name.startswith(b) for b in below):
                    p.requires_grad_(False)
            return {}
        return {b: self.below_lr_scale for b in below}


def plan(strategy: str, num_layers: int, weights: TransferWeights, below_lr_scale: float = 0.0) -> list[Stage]:
    """The stages of a strategy for an L-block student."""
    every = list(range(num_layers))
    has_layerwise = bool(weights.fmt or weights.at)
    if strategy == "auxiliary":
        return [Stage("auxiliary", every if has_layerwise else [], pd=bool(weights.pd))]
    if strategy == "joint":
        stages = [Stage("transfer", every, pd=False)] if has_layerwise else []
        return stages + ([Stage("pd", [], pd=True)] if weights.pd else [])
    if strategy == "progressive":
        stages = [Stage(f"layer-{i + 1}", [i], pd=False, below_lr_scale=below_lr_scale if i else None)
                  for i in range(num_layers)] if has_layerwise else []
        return stages + ([Stage("pd", [], pd=True)] if weights.pd else [])
    raise ValueError(f"--strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")


def stage_loss(stage: Stage, weights: TransferWeights) -> Callable:
    """loss_fn(student, teacher_out, batch) -> (loss, terms) for one stage; every term is logged."""

    def loss_fn(student, t_out, batch):
        layerwise = bool(stage.layers)
        s_out = student(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                        output_hidden_states=layerwise, output_attentions=layerwise)
        mask, n_tokens = batch["attention_mask"], batch.get("n_tokens")  # global counts: see model/distill/dist.py
        total = s_out.prediction_logits.new_zeros(())
        terms: dict[str, float] = {}
        for i in stage.layers:
            if weights.fmt:
                f = fmt_loss(s_out.hidden_states[i + 1], t_out.hidden_states[i + 1], mask, weights.fmt_normalize, n_tokens)
                total = total + weights.fmt * f
                terms[f"fmt_{i + 1}"] = f.item()
            if weights.at:
                a = at_loss(s_out.attentions[i], t_out.attentions[i], mask, n_tokens=n_tokens)
                total = total + weights.at * a
                terms[f"at_{i + 1}"] = a.item()
        if stage.pd:
            p, pd_terms = pd_loss(s_out.prediction_logits, t_out.prediction_logits, batch["mlm_labels"],
                                  s_out.seq_relationship_logits, batch.get("nsp_labels"), weights.pd_weights,
                                  batch.get("n_masked"), batch.get("n_rows"))
            total = total + weights.pd * p
            terms.update(pd_terms, pd=p.item())
        terms["loss"] = total.item()
        return total, terms

    return loss_fn
