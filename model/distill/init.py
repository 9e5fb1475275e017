"""Initialise a student from a teacher where shapes differ: word embeddings by PCA."""

from __future__ import annotations

import torch



def word_embeddings(model: torch.nn.Module) -> torch.nn.Embedding:
    """The token embedding table of either model family."""
    if hasattr(model, "get_input_embeddings") and model.get_input_embeddings() is not None:
        return model.get_input_embeddings()
    for name, mod in model.named_modules():
        if name.endswith(("word_embeddings", "embeddings.word")) and isinstance(mod, torch.nn.Embedding):
            return mod
    raise ValueError(f"{type(model).__name__} has no word embedding table")


@torch.no_grad()
def pca(table: torch.Tensor, dim: int) -> torch.Tensor:
    """Project rows onto their top-`dim` principal components, rescaled to the table's own per-entry std."""
    centered = table - table.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(centered.double(), full_matrices=False)
    proj = (centered.double() @ v[:dim].T).float()
    return proj * (table.std() / proj.std())


@torch.no_grad()
def init_word_embeddings(student: torch.nn.Module, teacher: torch.nn.Module) -> None:
    """Copy the teacher's vocabulary knowledge into a narrower student table (same vocabulary required)."""
    s, t = word_embeddings(student).weight, word_embeddings(teacher).weight
    if s.shape[0] != t.shape[0]:
        raise ValueError(f"student vocab {s.shape[0]} != teacher vocab {t.shape[0]}: embeddings cannot be transferred")
    s.copy_(pca(t, s.shape[1]) if t.shape[1] > s.shape[1] else t[:, : s.shape[1]])
