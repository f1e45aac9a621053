"""Tests of the learnable filterbank front-ends (Cos-Gauss and Sinc)."""

import io
import math

import pytest
import torch
import torchaudio

from speechbrain_relevance.lobes import (
    PCEN,
    CosGaussFilterbank,
    LogCompression,
    MelFilterbank,
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


# ---------------------------------------------------------------------------
# Options: learnable / mel bandwidths, learnable gains, compression, mel
# baseline. The 8 kHz configuration of the speech experiments.
SPEECH = dict(
    n_filters=40,
    sample_rate=8000,
    win_length=200,
    hop_length=80,
    kernel_size=129,
)


def perturb(module, seed=0, scale=0.1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return module


def mel_grid_half_spacing(n_filters, f_min, f_max):
    mels = torch.linspace(
        float(fb.hz_to_mel(torch.tensor(f_min, dtype=torch.float64))),
        float(fb.hz_to_mel(torch.tensor(f_max, dtype=torch.float64))),
        n_filters + 2,
        dtype=torch.float64,
    )
    edges = fb.mel_to_hz(mels)
    return (edges[2:] - edges[:-2]) / 2


def test_default_state_dict_keys_unchanged():
    assert list(CosGaussFilterbank(**SMALL).state_dict()) == ["theta"]
    assert list(SincFilterbank(**SMALL).state_dict()) == ["low_hz", "band_hz"]
    fbank = CosGaussFilterbank(bandwidth_scale=4.0, **SMALL)
    assert list(fbank.state_dict()) == ["theta"]
    assert fbank.compression is None and not fbank.learn_gain


def test_option_state_dict_keys():
    mel = CosGaussFilterbank(bandwidth_scale="mel", **SMALL)
    assert list(mel.state_dict()) == ["theta", "log_bandwidth"]
    assert [n for n, _ in mel.named_parameters()] == ["theta"]
    learn = CosGaussFilterbank(learn_bandwidth=True, learn_gain=True, **SMALL)
    assert sorted(n for n, _ in learn.named_parameters()) == [
        "log_bandwidth",
        "log_gain",
        "theta",
    ]
    assert learn.log_bandwidth.shape == learn.log_gain.shape == (12,)
    assert torch.allclose(learn.log_bandwidth, torch.full((12,), math.log(10)))
    assert torch.equal(learn.log_gain, torch.zeros(12))
    sinc = SincFilterbank(
        learn_gain=True, compression=PCEN(12, learnable=False), **SMALL
    )
    assert set(sinc.state_dict()) == {
        "low_hz",
        "band_hz",
        "log_gain",
        "compression.log_alpha",
        "compression.log_delta",
        "compression.log_root",
        "compression.logit_smooth",
    }
    # A learned bandwidth checkpoint loads into a fixed "mel" bank.
    learned = CosGaussFilterbank(
        bandwidth_scale="mel", learn_bandwidth=True, **SMALL
    )
    mel.load_state_dict(perturb(learned).state_dict())
    x = torch.randn(1, 1600)
    assert torch.equal(mel(x), learned(x))


def test_neutral_options_reproduce_default():
    torch.manual_seed(6)
    x = torch.randn(2, 1600)
    ref = CosGaussFilterbank(**SMALL)(x)
    same = CosGaussFilterbank(learn_bandwidth=True, learn_gain=True, **SMALL)
    assert torch.allclose(same(x), ref, atol=1e-5)
    logc = CosGaussFilterbank(
        compression=LogCompression(12, eps=1e-3, learnable=False), **SMALL
    )
    assert torch.allclose(logc(x), ref, atol=1e-5)


@pytest.mark.parametrize("cls", [CosGaussFilterbank, SincFilterbank])
def test_option_shapes_and_gradients(cls):
    torch.manual_seed(7)
    kw = dict(learn_gain=True, compression=PCEN(40))
    if cls is CosGaussFilterbank:
        kw.update(bandwidth_scale="mel", learn_bandwidth=True)
    fbank = perturb(cls(**SPEECH, **kw), scale=0.05)
    x = torch.randn(2, 1000, requires_grad=True)
    out = fbank(x)
    assert out.shape == (2, 1 + 1000 // 80, 40)
    assert out.dtype == torch.float32
    out.square().mean().backward()
    names = {n for n, _ in fbank.named_parameters()}
    assert {"log_gain", "compression.log_alpha"} <= names
    for name, p in fbank.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(p.grad).all(), name
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_learned_bandwidth_and_gain_change_output():
    fbank = CosGaussFilterbank(learn_bandwidth=True, learn_gain=True, **SMALL)
    x = torch.randn(1, 1600)
    ref = fbank(x).detach()
    with torch.no_grad():
        fbank.log_gain[3] += 1.0
    out = fbank(x).detach()
    assert not torch.allclose(out[..., 3], ref[..., 3])
    others = [k for k in range(12) if k != 3]
    assert torch.equal(out[..., others], ref[..., others])
    with torch.no_grad():
        fbank.log_bandwidth[5] -= 1.0
    fwhm = fbank.bandwidths_hz()
    default = CosGaussFilterbank(**SMALL).bandwidths_hz()
    assert torch.allclose(fwhm[5], default[5] * math.e, rtol=1e-4)


def test_mel_bandwidth_fwhm_matches_neighbour_spacing():
    fbank = CosGaussFilterbank(bandwidth_scale="mel", **SPEECH)
    target = mel_grid_half_spacing(40, 0.0, 4000.0).float()
    assert torch.allclose(fbank.bandwidths_hz(), target, rtol=1e-5)
    # FWHM = 2 sqrt(2 ln 2) * sample_rate / (2 pi sigma_samples)
    nu = fbank.center_frequencies() / 4000
    sigma = torch.exp(fbank.log_bandwidth) / nu
    fwhm = 2 * math.sqrt(2 * math.log(2)) * 8000 / (2 * math.pi * sigma)
    assert torch.allclose(fwhm, target, rtol=1e-5)
    limited = CosGaussFilterbank(
        bandwidth_scale="mel", f_min=100.0, f_max=3000.0, **SPEECH
    )
    target = mel_grid_half_spacing(40, 100.0, 3000.0).float()
    assert torch.allclose(limited.bandwidths_hz(), target, rtol=1e-5)


def test_mel_bandwidth_explicit_hz_uses_given_spacing():
    hz = [100.0, 300.0, 600.0, 1000.0, 2000.0, 4000.0]
    fbank = CosGaussFilterbank(
        init=hz, bandwidth_scale="mel", **dict(SMALL, n_filters=6)
    )
    # Outer neighbours mirrored: the first and last spacing carry over.
    expected = torch.tensor([200.0, 250.0, 350.0, 700.0, 1500.0, 2000.0])
    assert torch.allclose(fbank.bandwidths_hz(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="distinct"):
        CosGaussFilterbank(
            init=[100.0, 100.0],
            bandwidth_scale="mel",
            **dict(SMALL, n_filters=2),
        )


def test_sorting_keeps_bandwidths_and_gains_with_their_filters():
    hz = [3500.0, 2000.0, 900.0, 400.0, 150.0]
    kw = dict(SMALL, n_filters=5, bandwidth_scale="mel", learn_gain=True)
    desc = CosGaussFilterbank(init=hz, learn_bandwidth=True, **kw)
    asc = CosGaussFilterbank(init=hz[::-1], learn_bandwidth=True, **kw)
    assert torch.allclose(desc.bandwidths_hz(), asc.bandwidths_hz())
    gains = torch.tensor([0.5, -0.3, 0.2, 1.0, -1.0])
    widths = torch.tensor([0.3, -0.2, 0.1, 0.0, -0.4])
    with torch.no_grad():
        desc.log_gain.copy_(gains)
        asc.log_gain.copy_(gains.flip(0))
        desc.log_bandwidth.add_(widths)
        asc.log_bandwidth.add_(widths.flip(0))
    x = torch.randn(2, 1600)
    assert torch.allclose(desc(x), asc(x), atol=1e-5)
    assert torch.allclose(desc.bandwidths_hz(), asc.bandwidths_hz())
    # Parameters crossing: the bandwidth travels with its centre.
    fwhm_by_hz = dict(zip(hz, desc.bandwidths_hz().flip(0).tolist()))
    with torch.no_grad():
        desc.theta.copy_(desc.theta.flip(0))
        desc.log_bandwidth.copy_(desc.log_bandwidth.flip(0))
    again = dict(zip(hz, desc.bandwidths_hz().flip(0).tolist()))
    assert again == pytest.approx(fwhm_by_hz, rel=1e-6)


def test_sinc_gains_sorted_and_bandwidths():
    fbank = SincFilterbank(learn_gain=True, **SMALL)
    low, high = fbank.band_edges()
    assert torch.allclose(fbank.bandwidths_hz(), (high - low).detach())
    with torch.no_grad():
        # Swap two filters' bands; their gains are swapped with them.
        for p in (fbank.low_hz, fbank.band_hz):
            p[[2, 7]] = p[[7, 2]]
        fbank.log_gain[7] = 1.0
    x = torch.randn(1, 1600)
    ref = SincFilterbank(**SMALL)(x)
    out = fbank(x)
    gained = energies(out[..., 2]) / energies(ref[..., 2])
    assert torch.allclose(gained, torch.full_like(gained, math.e), rtol=1e-4)
    others = [k for k in range(12) if k != 2]
    assert torch.allclose(out[..., others], ref[..., others], atol=1e-5)


@pytest.mark.parametrize("cls", [CosGaussFilterbank, SincFilterbank])
def test_spectral_equals_full_conv_with_options(cls):
    torch.manual_seed(8)
    kw = dict(SPEECH, learn_gain=True)
    if cls is CosGaussFilterbank:
        kw.update(bandwidth_scale="mel", learn_bandwidth=True)
    a = perturb(cls(mode="spectral", **kw), scale=0.05)
    b = cls(mode="conv", padding="full", **kw)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 2400)
    ea, eb = energies(a(x)), energies(b(x))
    assert ((ea - eb).abs() / eb).max() <= 1e-5


def test_freeze_freezes_bandwidth_and_gain():
    fbank = CosGaussFilterbank(
        freeze=True, learn_bandwidth=True, learn_gain=True, **SMALL
    )
    assert not any(p.requires_grad for p in fbank.parameters())


def test_bandwidth_survives_extreme_values():
    fbank = CosGaussFilterbank(learn_bandwidth=True, **SMALL)
    with torch.no_grad():
        fbank.log_bandwidth[:6] = -200.0
        fbank.log_bandwidth[6:] = 200.0
    out = fbank(torch.randn(1, 1600))
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert torch.isfinite(fbank.theta.grad).all()


def test_options_fp32_under_autocast():
    fbank = CosGaussFilterbank(
        bandwidth_scale="mel", learn_gain=True, compression=PCEN(12), **SMALL
    )
    x = torch.randn(2, 1600)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fbank(x.bfloat16())
    assert out.dtype == torch.float32
    assert torch.allclose(out, fbank(x.bfloat16().float()), atol=1e-5)


def test_options_state_dict_round_trip():
    kw = dict(
        SMALL, bandwidth_scale="mel", learn_bandwidth=True, learn_gain=True
    )
    a = perturb(CosGaussFilterbank(compression=PCEN(12), **kw), seed=3)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = CosGaussFilterbank(compression=PCEN(12), **kw)
    b.load_state_dict(torch.load(buffer))
    x = torch.randn(2, 1600)
    assert torch.equal(a(x), b(x))


def test_option_errors():
    with pytest.raises(ValueError, match="'mel'"):
        CosGaussFilterbank(bandwidth_scale="bark", **SMALL)
    with pytest.raises(ValueError, match="> 0"):
        CosGaussFilterbank(bandwidth_scale=0.0, **SMALL)
    with pytest.raises(TypeError, match="nn.Module"):
        SincFilterbank(compression=torch.log, **SMALL)


def test_mel_filterbank_frames_match_learnable_banks():
    mel = MelFilterbank(**dict(n_mels=40, sample_rate=8000))
    cos = CosGaussFilterbank(**SPEECH)
    for n in (801, 1000, 1079, 1080):
        x = torch.randn(2, n)
        assert mel(x).shape == cos(x).shape == (2, 1 + n // 80, 40)


@pytest.mark.parametrize("win_length", [200, 201])
def test_mel_filterbank_uses_engine_frames(win_length):
    torch.manual_seed(9)
    mel = MelFilterbank(
        n_mels=20, sample_rate=8000, win_length=win_length, hop_length=80
    )
    assert mel.n_fft == 256
    x = torch.randn(2, 1000)
    frames = fb.frame_signal(x, win_length, 80)
    power = torch.fft.rfft(frames, n=256).abs().square()
    bank = torchaudio.functional.melscale_fbanks(
        129, 0.0, 4000.0, 20, 8000, norm=None, mel_scale="htk"
    )
    expected = torch.log(power @ bank / win_length + 1e-3)
    assert torch.allclose(mel(x), expected, atol=1e-4)


def test_mel_filterbank_silence_autocast_compression():
    mel = MelFilterbank(n_mels=16, win_length=200, hop_length=80)
    assert list(mel.parameters()) == []
    out = mel(torch.zeros(2, 1000))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.full_like(out, math.log(1e-3)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert mel(torch.randn(1, 1000).bfloat16()).dtype == torch.float32
    pcen = MelFilterbank(n_mels=16, compression=PCEN(16))
    x = torch.randn(1, 1000, requires_grad=True)
    pcen(x).sum().backward()
    assert pcen.compression.log_alpha.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0
    silent = pcen(torch.zeros(1, 1000))
    assert torch.isfinite(silent).all()


def test_mel_filterbank_errors():
    mel = MelFilterbank(n_mels=16)
    with pytest.raises(ValueError, match="too short"):
        mel(torch.randn(1, 128))
    with pytest.raises(ValueError, match="mono"):
        mel(torch.randn(1, 1000, 2))
    with pytest.raises(ValueError, match="wav_lens"):
        mel(torch.randn(2, 1000), torch.tensor([1.0, -0.5]))
    with pytest.raises(ValueError, match="n_fft"):
        MelFilterbank(n_mels=16, n_fft=255)
    with pytest.raises(ValueError, match="f_min"):
        MelFilterbank(n_mels=16, f_max=5000.0)


def test_sinc_init_is_exactly_the_mel_bands_in_order():
    # f_min = 30 Hz (SincNet's) lies below the 50 Hz floor, and the lowest
    # mel gaps are narrower than 50 Hz: nothing may be mirrored.
    fbank = SincFilterbank(n_filters=80, sample_rate=44100, win_length=2048,
                           hop_length=1024, kernel_size=705, f_min=30.0)
    low, high = fbank.band_edges()
    f_max = 22050 - 100.0
    mel = fb.mel_to_hz(torch.linspace(
        float(fb.hz_to_mel(torch.tensor(30.0))),
        float(fb.hz_to_mel(torch.tensor(f_max))), 81))
    assert torch.allclose(low, mel[:-1], atol=1e-3)
    assert torch.allclose(high, mel[1:], atol=1e-3)
    assert bool((torch.diff(low) > 0).all())
    # The floors still hold while training: no band below them.
    assert fbank.min_low_hz == pytest.approx(30.0)
    assert fbank.min_band_hz == pytest.approx(float(mel[1] - mel[0]))


def test_lengths_take_durations_and_scale_with_the_sample_rate():
    # Defaults keep the paper's time resolution at any sample rate.
    paper = CosGaussFilterbank(n_filters=8)
    assert (paper.win_length, paper.hop_length, paper.kernel_size) == (
        2048, 1024, 705)
    at16k = CosGaussFilterbank(n_filters=8, sample_rate=16000)
    assert (at16k.win_length, at16k.hop_length, at16k.kernel_size) == (
        743, 372, 257)
    frames = at16k(torch.randn(1, 16000)).shape[1]
    assert frames == paper(torch.randn(1, 44100)).shape[1] == 44
    # Fbank-style milliseconds, with their unit.
    sinc = SincFilterbank(n_filters=8, sample_rate=16000, win_length="25ms",
                          hop_length="10ms", kernel_size="0.01s")
    assert (sinc.win_length, sinc.hop_length, sinc.kernel_size) == (
        400, 160, 161)
    mel = MelFilterbank(n_mels=8, sample_rate=16000, win_length="25ms",
                        hop_length="10ms")
    assert (mel.win_length, mel.hop_length) == (400, 160)


def test_millisecond_numbers_get_an_error_naming_units():
    for build in (
        lambda: CosGaussFilterbank(sample_rate=16000, win_length=25,
                                   hop_length=10, kernel_size=15),
        lambda: MelFilterbank(sample_rate=16000, win_length=25,
                              hop_length=10),
    ):
        with pytest.raises(ValueError, match="in samples, while SpeechBrain"):
            build()
    with pytest.raises(ValueError, match="e.g. '25ms'"):
        CosGaussFilterbank(win_length="25 frames")
