"""Optimizers the recipe uses (LAMB as in the paper, AdamW as the common default) and the warmup/decay schedule."""

from __future__ import annotations

import torch



class Lamb(torch.optim.Optimizer):
    """LAMB (You et al. 2019): Adam's update rescaled per tensor by ||w|| / ||update|| (the trust ratio)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                m, v, t = state["m"], state["v"], state["step"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                update = (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                w_norm, u_norm = p.norm(), update.norm()
                trust = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
                p.add_(update * trust, alpha=-group["lr"])
        return loss


def param_groups(named_params, weight_decay: float, lr_scale: dict[str, float] | None = None):
    """Decay weights but not biases/norms; `lr_scale` maps a name prefix to a learning-rate multiplier."""
    groups: dict[tuple[bool, float], list] = {}
    for name, p in named_params:
        if not p.requires_grad:
            continue
        decay = p.ndim >= 2 and "norm" not in name.lower()
        scale = 1.0
        for prefix, s in (lr_scale or {}).items():
            if name.startswith(prefix):
                scale = s
        groups.setdefault((decay, scale), []).append(p)
    return [{"params": ps, "weight_decay": weight_decay if d else 0.0, "lr_scale": s} for (d, s), ps in groups.items()]


def make_optimizer(name: str, groups, lr: float) -> torch.optim.Optimizer:
    """`lamb` or `adamw` over parameter groups from `param_groups`."""
    for g in groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
    if name == "lamb":
        return Lamb(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"--optimizer {name!r}: choose lamb or adamw")


def set_lr(opt: torch.optim.Optimizer, base_lr: float, step: int, total: int, warmup: int) -> float:
    """Linear warmup then linear decay to zero; applies each group's lr_scale. Returns the base lr at `step`."""
    if step < warmup:
        lr = base_lr * (step + 1) / warmup
    else:
        lr = base_lr * max(0.0, (total - step) / max(1, total - warmup))
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
    return lr

