"""The transfer losses on plain tensors: zero at agreement, the right reference value, masks, clear shape errors."""

import pytest
import torch
import torch.nn.functional as F

from common.errors import BadInput
from model.distill.losses import PDWeights, Shapes, at_loss, check_transfer, fmt_loss, kd_mlm_loss, pd_loss


def test_fmt_is_mse_and_zero_at_agreement():
    s, t = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    assert fmt_loss(s, t).item() == pytest.approx(F.mse_loss(s, t).item(), rel=1e-6)
    assert fmt_loss(t.clone(), t).item() == 0.0


def test_fmt_mask_ignores_padding_and_normalize_ignores_scale():
    s, t = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    s2 = s.clone()
    s2[:, 2:] += 100.0  # garbage on padded positions
    mask = torch.tensor([[1, 1, 0, 0]])
    assert fmt_loss(s2, t, mask).item() == pytest.approx(F.mse_loss(s[:, :2], t[:, :2]).item(), rel=1e-5)
    # Layer-wise normalization compares shapes of the maps, not their scale.
    assert fmt_loss(3 * t + 1, t, normalize=True).item() < 1e-6
    assert fmt_loss(3 * t + 1, t).item() > 1.0


def test_fmt_gradient_flows_to_student_only():
    s = torch.randn(2, 3, 4, requires_grad=True)
    t = torch.randn(2, 3, 4, requires_grad=True)
    fmt_loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_at_is_per_head_kl_teacher_to_student():
    s = torch.softmax(torch.randn(2, 3, 5, 5), -1)
    t = torch.softmax(torch.randn(2, 3, 5, 5), -1)
    ref = (t * (t.log() - s.log())).sum(-1).mean()
    assert at_loss(s, t).item() == pytest.approx(ref.item(), rel=1e-4)
    assert at_loss(t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert at_loss(s, t).item() > 0


def test_pd_combines_mlm_kd_and_nsp_with_alpha():
    torch.manual_seed(0)
    s, t = torch.randn(2, 6, 11), torch.randn(2, 6, 11)
    labels = torch.full((2, 6), -100)
    labels[0, 1], labels[1, 4] = 3, 7
    nsp_s, nsp_y = torch.randn(2, 2), torch.tensor([0, 1])
    sel = labels != -100
    mlm = F.cross_entropy(s[sel], labels[sel])
    kd = -(F.softmax(t[sel], -1) * F.log_softmax(s[sel], -1)).sum(-1).mean()
    nsp = F.cross_entropy(nsp_s, nsp_y)
    loss, terms = pd_loss(s, t, labels, nsp_s, nsp_y, PDWeights(alpha=0.3, nsp=1.0))
    assert loss.item() == pytest.approx((0.3 * mlm + 0.7 * kd + nsp).item(), rel=1e-5)
    assert set(terms) == {"pd_mlm", "pd_kd", "pd_nsp"}
    # alpha = 1 is plain MLM pre-training; the KD term is a soft cross-entropy, minimal when distributions agree.
    assert pd_loss(s, t, labels, w=PDWeights(alpha=1.0))[0].item() == pytest.approx(mlm.item(), rel=1e-5)
    assert kd_mlm_loss(t[sel], t[sel]).item() < kd_mlm_loss(s[sel], t[sel]).item()


def test_pd_without_masked_positions_is_a_clear_error():
    with pytest.raises(ValueError, match="no masked position"):
        pd_loss(torch.randn(1, 3, 5), torch.randn(1, 3, 5), torch.full((1, 3), -100))
    with pytest.raises(ValueError, match="pd-alpha"):
        PDWeights(alpha=1.5)


def test_shape_mismatch_names_the_dimensions_and_what_is_left():
    student, teacher = Shapes(24, 512, 4, 30522), Shapes(6, 384, 12, 30522)
    with pytest.raises(ValueError) as err:
        check_transfer(student, teacher, {"fmt", "at"})
    msg = str(err.value)
    assert "512 vs 384" in msg and "heads 4 vs 12" in msg and "layers 24 vs 6" in msg
    assert "still possible: PD" in msg
    check_transfer(student, teacher, {"pd"})  # PD only needs the same vocabulary
    check_transfer(Shapes(24, 512, 4, 100), Shapes(24, 512, 4, 100), {"fmt", "at", "pd"})
    with pytest.raises(ValueError, match="attention heads 4 vs 8.*still possible: FMT, PD"):
        check_transfer(Shapes(2, 32, 4, 10), Shapes(2, 32, 8, 10), {"at"})
    with pytest.raises(ValueError, match="feature maps differ"):
        fmt_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 4))
