"""Tests of the learnable filterbank front-ends (Cos-Gauss and Sinc)."""

import math

import pytest
import torch

from speechbrain_relevance.lobes import (
    CosGaussFilterbank,
    SincFilterbank,
    valid_deltas,
)
from speechbrain_relevance.lobes import functional as fb

PAPER = dict(
    n_filters=80,
    sample_rate=44100,
    win_length=2048,
    hop_length=1024,
    kernel_size=705,
)
SMALL = dict(
    n_filters=12,
    sample_rate=16000,
    win_length=400,
    hop_length=160,
    kernel_size=101,
)


def energies(log_feats, log_eps=1e-3):
    return log_feats.double().exp() - log_eps


def pair(cls, mode_b="conv", padding_b="full", **kw):
    a = cls(mode="spectral", **kw)
    b = cls(mode=mode_b, padding=padding_b, **kw)
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("cls", [CosGaussFilterbank, SincFilterbank])
@pytest.mark.parametrize("n_samples", [44100, 45000])
def test_shape_contract(cls, n_samples):
    fbank = cls(**PAPER)
    feats = fbank(torch.randn(3, n_samples))
    assert feats.shape == (3, 1 + n_samples // 1024, 80)
    assert feats.dtype == torch.float32


def test_ten_second_clip_gives_431_frames():
    fbank = CosGaussFilterbank(**PAPER)
    assert fbank(torch.randn(1, 441000)).shape == (1, 431, 80)


@pytest.mark.parametrize("cls", [CosGaussFilterbank, SincFilterbank])
def test_spectral_equals_full_conv_paper_config(cls):
    torch.manual_seed(0)
    a, b = pair(cls, **PAPER)
    x = torch.randn(1, 16384)
    ea, eb = energies(a(x)), energies(b(x))
    assert ((ea - eb).abs() / eb).max() <= 1e-5


@pytest.mark.parametrize("cls", [CosGaussFilterbank, SincFilterbank])
def test_spectral_gradients_match_full_conv(cls):
    torch.manual_seed(1)
    a, b = pair(cls, **SMALL)
    x = torch.randn(2, 4000)
    target = torch.randn(2, 26, 12)
    ((a(x) - target) ** 2).sum().backward()
    ((b(x) - target) ** 2).sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert pa.grad is not None and pa.grad.abs().sum() > 0, name
        rel = (pa.grad - pb.grad).abs().max() / pb.grad.abs().max()
        assert rel < 1e-4, name


def test_waveform_gradient_matches_full_conv():
    # A waveform that needs a gradient takes the spectral path without the
    # reused FFT buffer; values and input gradients still match.
    torch.manual_seed(5)
    a, b = pair(CosGaussFilterbank, **SMALL)
    x = torch.randn(2, 4000)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = a(xa), b(xb)
    assert torch.allclose(ya, yb, atol=1e-4)
    ya.sum().backward()
    yb.sum().backward()
    rel = (xa.grad - xb.grad).abs().max() / xb.grad.abs().max()
    assert rel < 1e-3


def test_functional_spectral_equals_conv_any_fft_size():
    torch.manual_seed(2)
    frames = torch.randn(2, 3, 100)
    kernels = torch.randn(5, 31)
    ref = fb.conv_band_energy(frames, kernels, padding="full")
    for n_fft in (130, 131, 256):
        got = fb.spectral_band_energy(frames, kernels, n_fft)
        assert torch.allclose(got, ref, rtol=1e-4)
    with pytest.raises(ValueError, match="at least"):
        fb.spectral_band_energy(frames, kernels, 129)


def test_valid_mode_is_reference_mean_over_valid_outputs():
    torch.manual_seed(3)
    fbank = CosGaussFilterbank(mode="conv", padding="valid", **SMALL)
    x = torch.randn(1, 1600)
    frames = fb.frame_signal(x, 400, 160)
    k = fbank.kernels().detach()
    # Direct loop for one frame and one filter: the reference's definition.
    t, f = 4, 7
    outs = [
        (frames[0, t, i : i + 101] * k[f]).sum() for i in range(400 - 101 + 1)
    ]
    expected = torch.log(torch.stack(outs).square().mean() + 1e-3)
    assert torch.allclose(fbank(x)[0, t, f], expected, rtol=1e-4)


def test_spectral_close_to_valid_mode():
    torch.manual_seed(4)
    a, v = pair(CosGaussFilterbank, padding_b="valid", **PAPER)
    x = torch.randn(1, 16384)
    diff = (a(x) - v(x)).abs()
    # Documented deviation: about 0.05 mean absolute log difference on
    # noise, mostly from the lowest, longest filters.
    assert diff.mean() < 0.1
    assert diff[..., 40:].mean() < diff[..., :10].mean()


def test_framing_reflect_pad_and_hamming():
    x = torch.arange(10.0).unsqueeze(0)
    frames = fb.frame_signal(x, 4, 2)
    window = torch.hamming_window(4, periodic=False)
    # Frame 0 is centred on sample 0: reflect padding gives [2, 1, 0, 1].
    assert torch.allclose(frames[0, 0], torch.tensor([2.0, 1, 0, 1]) * window)
    assert frames.shape == (1, 1 + 10 // 2, 4)


def test_cos_gauss_kernel_formula_and_paper_equation():
    nu = torch.tensor([0.3], dtype=torch.float64)
    k = fb.cos_gauss_kernels(nu, 705, bandwidth_scale=10.0)[0]
    n = torch.arange(-352, 353, dtype=torch.float64)
    sigma = 10 / 0.3
    expected = torch.cos(math.pi * 0.3 * n) * torch.exp(
        -(n**2) / (2 * sigma**2)
    )
    assert torch.allclose(k, expected, atol=1e-12)
    # bandwidth_scale=2 is the paper's eq. (1) with mu = nu / 2 cycles/sample
    mu = 0.15
    k2 = fb.cos_gauss_kernels(nu, 705, bandwidth_scale=2.0)[0]
    eq1 = torch.cos(2 * math.pi * mu * n) * torch.exp(-(n**2) * mu**2 / 2)
    assert torch.allclose(k2, eq1, atol=1e-12)


def test_filters_sorted_and_output_follows_sorted_order():
    hz = [7000.0, 300.0, 2000.0, 5000.0, 100.0, 600.0]
    kw = dict(SMALL, n_filters=6)
    shuffled = CosGaussFilterbank(init=hz, **kw)
    ordered = CosGaussFilterbank(init=sorted(hz), **kw)
    fc = shuffled.center_frequencies()
    assert torch.all(fc[1:] > fc[:-1])
    assert torch.allclose(fc, torch.tensor(sorted(hz)), rtol=1e-4)
    x = torch.randn(2, 3200)
    assert torch.allclose(shuffled(x), ordered(x), atol=1e-5)
    assert torch.allclose(shuffled.kernels(), ordered.kernels(), atol=1e-6)


def test_resorting_after_parameters_cross():
    fbank = CosGaussFilterbank(
        init=[1000.0, 2000.0], **dict(SMALL, n_filters=2)
    )
    with torch.no_grad():
        fbank.theta.copy_(fbank.theta.flip(0))
    fc = fbank.center_frequencies()
    assert fc[0] < fc[1]


def test_explicit_hz_init_round_trip():
    hz = torch.linspace(40.0, 21000.0, 80)
    fbank = CosGaussFilterbank(init=hz.tolist(), **PAPER)
    assert torch.allclose(fbank.center_frequencies(), hz, rtol=1e-4)


def test_mel_linear_random_inits():
    mel = CosGaussFilterbank(init="mel", f_min=50.0, f_max=16000.0, **PAPER)
    expected = fb.mel_center_frequencies(80, 50.0, 16000.0)
    assert torch.allclose(mel.center_frequencies(), expected, rtol=1e-4)
    lin = CosGaussFilterbank(init="linear", **PAPER).center_frequencies()
    steps = lin[1:] - lin[:-1]
    assert torch.allclose(steps, steps.mean().expand_as(steps), rtol=1e-3)
    torch.manual_seed(0)
    rnd = CosGaussFilterbank(init="random", **PAPER).center_frequencies()
    lo = torch.sigmoid(torch.tensor(-3.7)) * 22050
    hi = torch.sigmoid(torch.tensor(1.3)) * 22050
    assert rnd.min() >= lo * 0.999 and rnd.max() <= hi * 1.001


def test_center_frequencies_stay_inside_nyquist_whatever_the_optimiser():
    fbank = CosGaussFilterbank(**SMALL)
    with torch.no_grad():
        fbank.theta[:6] = 1e4
        fbank.theta[6:] = -1e4
    fc = fbank.center_frequencies()
    assert torch.all(fc > 0) and torch.all(fc < 8000)
    opt = torch.optim.SGD(fbank.parameters(), lr=1e6)
    fbank(torch.randn(1, 1600)).sum().backward()
    opt.step()
    out = fbank(torch.randn(1, 1600))
    assert torch.isfinite(out).all()
    fc = fbank.center_frequencies()
    assert torch.all(fc > 0) and torch.all(fc < 8000)


def test_sinc_bands_inside_nyquist():
    fbank = SincFilterbank(**SMALL)
    with torch.no_grad():
        fbank.low_hz.fill_(1e6)
        fbank.band_hz.fill_(1e6)
    fc = fbank.center_frequencies()
    assert torch.all(fc > 0) and torch.all(fc < 8000)
    assert torch.isfinite(fbank(torch.randn(1, 1600))).all()


@pytest.mark.parametrize("cls", [CosGaussFilterbank, SincFilterbank])
@pytest.mark.parametrize("mode", ["spectral", "conv"])
def test_silence_is_finite(cls, mode):
    fbank = cls(mode=mode, **SMALL)
    out = fbank(torch.zeros(2, 1600))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.full_like(out, math.log(1e-3)))
    out.sum().backward()
    for p in fbank.parameters():
        assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fp32_under_autocast(dtype):
    fbank = CosGaussFilterbank(**SMALL)
    x = torch.randn(2, 1600)
    ref = fbank(x)
    with torch.autocast("cpu", dtype=dtype):
        out = fbank(x.to(dtype))
    assert out.dtype == torch.float32
    # The only difference is the input's rounding to the low precision.
    assert torch.allclose(out, fbank(x.to(dtype).float()), atol=1e-5)
    assert (out - ref).abs().mean() < 0.05


def test_freeze():
    fbank = CosGaussFilterbank(freeze=True, **SMALL)
    assert not any(p.requires_grad for p in fbank.parameters())
    assert not fbank(torch.randn(1, 1600)).requires_grad


def test_state_dict_round_trip():
    a = CosGaussFilterbank(init="random", **SMALL)
    b = CosGaussFilterbank(**SMALL)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 1600)
    assert torch.equal(a(x), b(x))


def test_clear_errors():
    with pytest.raises(ValueError, match="longer than the frame"):
        CosGaussFilterbank(**dict(SMALL, kernel_size=401))
    with pytest.raises(ValueError, match="mode"):
        CosGaussFilterbank(mode="fft", **SMALL)
    with pytest.raises(ValueError, match="padding"):
        CosGaussFilterbank(padding="same", **SMALL)
    with pytest.raises(ValueError, match="gives 3 centre frequencies"):
        CosGaussFilterbank(init=[1.0, 2.0, 3.0], **SMALL)
    with pytest.raises(ValueError, match="strictly between 0 and Nyquist"):
        CosGaussFilterbank(init=[100.0] * 11 + [8000.0], **SMALL)
    with pytest.raises(ValueError, match="init must be"):
        CosGaussFilterbank(init="bark", **SMALL)
    with pytest.raises(ValueError, match="f_min"):
        CosGaussFilterbank(f_min=9000.0, **SMALL)
    with pytest.raises(ValueError, match="n_filters"):
        CosGaussFilterbank(**dict(SMALL, n_filters=0))
    fbank = CosGaussFilterbank(**SMALL)
    with pytest.raises(ValueError, match="too short"):
        fbank(torch.randn(1, 1))
    with pytest.raises(ValueError, match="mono"):
        fbank(torch.randn(1, 1600, 2))
    with pytest.raises(ValueError, match="wav_lens"):
        fbank(torch.randn(2, 1600), torch.tensor([1.0, 1.5]))


def test_valid_deltas_formula():
    ramp = torch.arange(20.0).view(1, 20, 1).repeat(2, 1, 3)
    out = valid_deltas(ramp)
    assert out.shape == (2, 3, 3, 12)
    assert torch.equal(out[:, 0], ramp[:, 4:-4].transpose(1, 2))
    assert torch.allclose(out[:, 1], torch.ones(2, 3, 12))
    assert torch.allclose(out[:, 2], torch.zeros(2, 3, 12))
    x = torch.randn(1, 30, 2)
    d = ((x[:, 3:-1] - x[:, 1:-3]) + 2 * (x[:, 4:] - x[:, :-4])) / 10
    assert torch.allclose(valid_deltas(x)[:, 1], d[:, 2:-2].transpose(1, 2))
    with pytest.raises(ValueError, match="9 frames"):
        valid_deltas(torch.randn(1, 8, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu():
    a, b = pair(CosGaussFilterbank, **PAPER)
    x = torch.randn(2, 22050)
    cpu = a(x)
    gpu = a.cuda()(x.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4)
