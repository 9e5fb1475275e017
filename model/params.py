"""Parameter counts per preset, next to the paper's figures: `python -m model.params`."""

from __future__ import annotations

import torch
from torch import nn

from model.config import get_preset
from model.mobilebert import MobileBertForPreTraining, MobileBertModel

# Sun et al. 2020, Table 1 (#Params). IB-BERT_LARGE is the teacher.
PAPER = {"mobilebert": 25.3e6, "mobilebert-tiny": 15.1e6, "ib-bert-large": 293e6}


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (a tied table counts once)."""
    return sum(p.numel() for p in model.parameters())


def breakdown(preset: str) -> dict[str, int]:
    """Counts for a preset's body and its parts, built on the meta device (no memory, no init cost)."""
    cfg = get_preset(preset)
    with torch.device("meta"):
        body = MobileBertModel(cfg)
        pretraining = MobileBertForPreTraining(cfg)
    block = body.layers[0]
    attention = count_parameters(block.attention) + sum(
        count_parameters(getattr(block, n)) for n in ("input_bottleneck", "kq_bottleneck") if hasattr(block, n))
    return {
        "body": count_parameters(body),
        "embeddings": count_parameters(body.embeddings),
        "per_block": count_parameters(block),
        "per_block_attention": attention,
        "per_block_ffns": count_parameters(block.ffns),
        "pretraining": count_parameters(pretraining),
    }


def table(presets=("mobilebert", "mobilebert-tiny", "ib-bert-large")) -> str:
    """Markdown table: our counts per preset next to the paper's."""
    rows = ["| preset | body (ours = transformers) | paper | body - paper | embeddings | per block "
            "(attention + bottlenecks / FFNs) | with pre-training heads |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for p in presets:
        b = breakdown(p)
        paper = PAPER.get(p)
        rows.append(
            f"| {p} | {b['body'] / 1e6:.2f}M | {paper / 1e6:.1f}M | {(b['body'] - paper) / 1e6:+.2f}M | "
            f"{b['embeddings'] / 1e6:.2f}M | {b['per_block'] / 1e6:.3f}M ({b['per_block_attention'] / 1e6:.3f}M / "
            f"{b['per_block_ffns'] / 1e6:.3f}M) | {b['pretraining'] / 1e6:.2f}M |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
