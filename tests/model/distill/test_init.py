"""Student initialisation from a wider teacher: PCA keeps the geometry of the vocabulary."""

import pytest
import torch

from common.errors import BadInput
from model.config import get_preset
from model.distill.init import init_word_embeddings, pca
from model.mobilebert import MobileBertForSequenceClassification


def test_pca_keeps_distances_of_a_low_rank_table():
    torch.manual_seed(0)
    table = torch.randn(200, 6) @ torch.randn(6, 32)  # rank 6 in 32 dims
    small = pca(table, 6)
    exact = "donot_use_mm_for_euclid_dist"
    d_big, d_small = torch.cdist(table, table, compute_mode=exact), torch.cdist(small, small, compute_mode=exact)
    scale = (d_small.sum() / d_big.sum()).item()  # pca rescales to the table's std, distances up to one factor
    assert torch.allclose(d_small, d_big * scale, rtol=1e-3, atol=1e-3)
    assert small.std().item() == pytest.approx(table.std().item(), rel=1e-4)


def test_init_word_embeddings_copies_into_the_student_table():
    teacher = MobileBertForSequenceClassification(get_preset("test-tiny", embedding_size=32))
    student = MobileBertForSequenceClassification(get_preset("test-tiny"))
    init_word_embeddings(student, teacher)
    expected = pca(teacher.mobilebert.embeddings.word.weight.detach(), 16)
    assert torch.allclose(student.mobilebert.embeddings.word.weight, expected)
    other = MobileBertForSequenceClassification(get_preset("test-tiny", vocab_size=64))
    with pytest.raises(ValueError, match="vocab 64 != teacher vocab 128"):
        init_word_embeddings(other, teacher)
