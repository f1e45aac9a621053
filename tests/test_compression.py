"""Tests of the compression modules (log with offsets, PCEN)."""

import io
import math

import pytest
import torch

from speechbrain_relevance.lobes import PCEN, LogCompression
from speechbrain_relevance.lobes import functional as fb


def loop_smoother(x, s):
    """M[t] = (1 - s) M[t-1] + s x[t], M[0] = x[0], one frame at a time."""
    m = x[:, 0]
    out = [m]
    for t in range(1, x.shape[1]):
        m = (1 - s) * m + s * x[:, t]
        out.append(m)
    return torch.stack(out, dim=1)


def loop_pcen(x, alpha, delta, root, s, floor):
    m = loop_smoother(x, s)
    return (x / (floor + m) ** alpha + delta) ** (1 / root) - delta ** (
        1 / root
    )


def test_log_compression_formula_and_learnable_offset():
    comp = LogCompression(4, eps=1e-2)
    x = torch.rand(2, 5, 4)
    assert torch.allclose(comp(x), torch.log(x + 1e-2), atol=1e-6)
    assert [n for n, _ in comp.named_parameters()] == ["log_eps"]
    comp(torch.zeros(1, 3, 4)).sum().backward()
    assert torch.allclose(comp.log_eps.grad, torch.full((4,), 3.0))
    with torch.no_grad():
        comp.log_eps[1] = 0.0
    assert torch.allclose(comp(torch.zeros(1, 1, 4))[0, 0, 1], torch.zeros(()))


def test_log_compression_fixed_offset_is_buffer():
    comp = LogCompression(4, learnable=False)
    assert list(comp.parameters()) == []
    assert list(comp.state_dict()) == ["log_eps"]
    comp.load_state_dict(LogCompression(4).state_dict())


def test_smoother_equals_python_loop():
    torch.manual_seed(0)
    x = torch.rand(2, 40, 3) * torch.tensor([1.0, 100.0, 1e-3])
    s = torch.tensor([0.04, 0.3, 0.9])
    ref = loop_smoother(x.double(), s.double()).float()
    assert torch.allclose(fb.ema_smoother(x, s), ref, atol=1e-5)
    shared = fb.ema_smoother(x, torch.tensor([0.2]))
    assert torch.allclose(shared, loop_smoother(x, 0.2), atol=1e-5)


def test_smoother_keeps_relative_accuracy_after_a_loud_start():
    # A loud first frame then silence: M decays geometrically and must
    # not be swamped by rounding of the first frame's value.
    x = torch.zeros(1, 31, 1)
    x[0, 0, 0] = 1e4
    m = fb.ema_smoother(x, torch.tensor([0.5]))[0, :, 0]
    expected = 1e4 * 0.5 ** torch.arange(31.0)
    assert torch.allclose(m, expected, rtol=1e-5)


def test_pcen_equals_reference_formula():
    torch.manual_seed(1)
    pcen = PCEN(3, alpha=0.9, smooth_coef=0.1, delta=1.5, root=3.0)
    x = torch.rand(2, 30, 3) * 10
    ref = loop_pcen(x.double(), 0.9, 1.5, 3.0, 0.1, 1e-6).float()
    assert torch.allclose(pcen(x), ref, atol=1e-5)


def test_pcen_shape_and_gradients_reach_everything():
    torch.manual_seed(2)
    pcen = PCEN(8)
    x = (torch.rand(3, 20, 8) * 5).requires_grad_()
    out = pcen(x)
    assert out.shape == (3, 20, 8) and out.dtype == torch.float32
    out.square().sum().backward()
    names = sorted(n for n, _ in pcen.named_parameters())
    assert names == ["log_alpha", "log_delta", "log_root", "logit_smooth"]
    for name, p in pcen.named_parameters():
        assert p.shape == (8,), name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_pcen_silence_is_finite():
    pcen = PCEN(6)
    x = torch.zeros(2, 15, 6, requires_grad=True)
    out = pcen(x)
    assert torch.equal(out, torch.zeros_like(out))
    (out.sum() + 0.1 * out.square().sum()).backward()
    assert torch.isfinite(x.grad).all()
    for name, p in pcen.named_parameters():
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_pcen_fp32_under_autocast(dtype):
    torch.manual_seed(3)
    pcen = PCEN(5)
    x = (torch.rand(2, 25, 5) * 100).to(dtype)
    with torch.autocast("cpu", dtype=dtype):
        out = pcen(x)
        silent = pcen(torch.zeros(1, 5, 5, dtype=dtype))
    assert out.dtype == silent.dtype == torch.float32
    assert torch.allclose(out, pcen(x.float()), atol=1e-6)
    assert torch.isfinite(silent).all()


def test_pcen_clamps_alpha_and_root_like_leaf():
    x = torch.rand(1, 10, 2) * 3
    pcen = PCEN(2)
    with torch.no_grad():
        pcen.log_alpha.fill_(math.log(1.5))
        pcen.log_root.fill_(math.log(0.5))
    ref = PCEN(2, alpha=1.0, root=1.0)
    assert torch.allclose(pcen(x), ref(x), atol=1e-6)


def test_pcen_fixed_and_shared_smoothing():
    fixed = PCEN(4, learnable=False)
    assert list(fixed.parameters()) == []
    assert set(fixed.state_dict()) == set(PCEN(4).state_dict())
    shared = PCEN(4, per_band_smooth=False)
    assert shared.logit_smooth.shape == (1,)
    assert torch.allclose(
        torch.sigmoid(shared.logit_smooth), torch.tensor([0.04])
    )
    x = torch.rand(1, 10, 4)
    assert torch.allclose(shared(x), fixed(x), atol=1e-6)


def test_pcen_state_dict_round_trip():
    a = PCEN(4)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.1 * torch.randn(p.shape))
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = PCEN(4)
    b.load_state_dict(torch.load(buffer))
    x = torch.rand(2, 10, 4)
    assert torch.equal(a(x), b(x))


def test_compression_errors():
    with pytest.raises(ValueError, match="alpha"):
        PCEN(4, alpha=1.5)
    with pytest.raises(ValueError, match="smooth_coef"):
        PCEN(4, smooth_coef=1.0)
    with pytest.raises(ValueError, match="root"):
        PCEN(4, root=0.5)
    with pytest.raises(ValueError, match="n_bands"):
        LogCompression(0)
    with pytest.raises(ValueError, match="eps"):
        LogCompression(4, eps=0.0)
    with pytest.raises(ValueError, match=r"\[batch, frames, 4\]"):
        PCEN(4)(torch.rand(2, 10, 5))
