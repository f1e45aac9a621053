"""Stateless maths of the learnable filterbank front-ends.

Small functions that build kernels, frame waveforms, turn frames into
band energies and band energies into features (:func:`compress_band_energy`,
the tail every front-end shares), and check the front-ends' arguments. The
``nn.Module`` classes in :mod:`speechbrain_relevance.lobes.filterbanks`,
:mod:`~speechbrain_relevance.lobes.mel` and
:mod:`~speechbrain_relevance.lobes.compression` only hold parameters and
call these.

Two ways compute the same band energies:

* ``conv``: every Hamming-windowed frame is convolved with every kernel in
  the time domain, as the authors' reference does (about 50 GMAC per 10 s
  clip at 44.1 kHz with 80 filters of 705 taps).
* ``spectral``: by Parseval, the energy of a frame fully convolved with a
  kernel is ``(1/N) sum_k |X[k]|^2 |G[k]|^2`` for an FFT size
  ``N >= win_length + kernel_size - 1``. ``G`` is the FFT of the actual,
  truncated kernel, so the result is exact and differentiable with respect
  to the filter parameters, and costs one FFT per frame plus a small
  matrix product.

Authors
 * speechbrain-relevance developers
"""

import math

import torch
import torch.nn.functional as F
import torchaudio

# FWHM of a Gaussian in standard deviations.
_FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


def hz_to_mel(hz):
    """Convert frequencies in Hz to the HTK mel scale.

    Arguments
    ---------
    hz : torch.Tensor
        Frequencies in Hz.

    Returns
    -------
    torch.Tensor
        The same frequencies in mel.

    Example
    -------
    >>> hz_to_mel(torch.tensor([0.0, 1000.0])).round()
    tensor([   0., 1000.])
    """
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_to_hz(mel):
    """Convert HTK mel values back to Hz.

    Arguments
    ---------
    mel : torch.Tensor
        Values on the mel scale.

    Returns
    -------
    torch.Tensor
        Frequencies in Hz.

    Example
    -------
    >>> mel_to_hz(hz_to_mel(torch.tensor([440.0]))).round()
    tensor([440.])
    """
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_center_frequencies(n_filters, f_min, f_max):
    """Centre frequencies of a mel filterbank, in Hz (ascending).

    The ``n_filters + 2`` points equally spaced in mel between ``f_min`` and
    ``f_max`` are the edges of the triangles; the inner points are their
    centres, so no centre sits on ``f_min`` or ``f_max``.

    Arguments
    ---------
    n_filters : int
        Number of filters.
    f_min : float
        Lowest edge in Hz.
    f_max : float
        Highest edge in Hz.

    Returns
    -------
    torch.Tensor
        ``[n_filters]`` centre frequencies in Hz.

    Example
    -------
    >>> fc = mel_center_frequencies(80, 0.0, 22050.0)
    >>> fc.shape, bool(fc[0] > 0), bool(fc[-1] < 22050)
    (torch.Size([80]), True, True)
    """
    mels = torch.linspace(
        float(hz_to_mel(torch.tensor(float(f_min)))),
        float(hz_to_mel(torch.tensor(float(f_max)))),
        n_filters + 2,
        dtype=torch.float64,
    )
    return mel_to_hz(mels[1:-1]).float()


def kernel_taps(kernel_size, device=None, dtype=torch.float32):
    """Sample indices ``n = -(K-1)/2 ... (K-1)/2`` of a symmetric kernel.

    Arguments
    ---------
    kernel_size : int
        Odd number of taps ``K``.
    device : torch.device, optional
        Device of the result.
    dtype : torch.dtype
        Type of the result.

    Returns
    -------
    torch.Tensor
        ``[kernel_size]`` tap positions in samples.

    Example
    -------
    >>> kernel_taps(5)
    tensor([-2., -1.,  0.,  1.,  2.])
    """
    half = (kernel_size - 1) / 2
    return torch.linspace(-half, half, kernel_size, device=device, dtype=dtype)


def cos_gauss_kernels(nu, kernel_size, bandwidth_scale=10.0):
    """Cosine-modulated Gaussian kernels (constant-Q for a shared scale).

    ``k(n) = cos(pi nu n) exp(-n^2 / (2 sigma^2))`` with
    ``sigma = bandwidth_scale / nu`` samples, where ``nu`` is the centre
    frequency as a fraction of Nyquist. A tensor ``bandwidth_scale`` gives
    every filter its own width. With ``bandwidth_scale=2`` this is
    the paper's equation (1), ``cos(2 pi mu n) exp(-n^2 mu^2 / 2)`` with
    ``mu = nu / 2`` cycles per sample. Kernels are neither normalised nor
    clipped: below roughly ``bandwidth_scale * sample_rate / (pi * K / 2)``
    the Gaussian is wider than the taps and the kernel is truncated, exactly
    as in the reference.

    Arguments
    ---------
    nu : torch.Tensor
        ``[n_filters]`` centre frequencies, fractions of Nyquist in (0, 1].
    kernel_size : int
        Odd number of taps.
    bandwidth_scale : float or torch.Tensor
        Gaussian width in periods of the centre frequency (see above): one
        float for all filters or a ``[n_filters]`` tensor.

    Returns
    -------
    torch.Tensor
        ``[n_filters, kernel_size]`` kernels.

    Example
    -------
    >>> k = cos_gauss_kernels(torch.tensor([0.1, 0.5]), 705)
    >>> k.shape, k[:, 352]
    (torch.Size([2, 705]), tensor([1., 1.]))
    >>> scales = torch.tensor([10.0, 2.0])
    >>> k2 = cos_gauss_kernels(torch.tensor([0.1, 0.5]), 705, scales)
    >>> torch.equal(k2[0], k[0]), torch.equal(k2[1], k[1])
    (True, False)
    """
    n = kernel_taps(kernel_size, nu.device, nu.dtype)
    nu = nu.unsqueeze(1)
    if torch.is_tensor(bandwidth_scale):
        bandwidth_scale = bandwidth_scale.unsqueeze(-1)
    sigma = bandwidth_scale / nu
    return torch.cos(math.pi * nu * n) * torch.exp(-0.5 * (n / sigma) ** 2)


def cos_gauss_fwhm_hz(nu, bandwidth_scale, sample_rate):
    """Spectral full width at half maximum of Cos-Gauss filters, in Hz.

    A Gaussian of ``sigma`` samples has a Gaussian spectrum of standard
    deviation ``sample_rate / (2 pi sigma)`` Hz, and a Gaussian's FWHM is
    ``2 sqrt(2 ln 2)`` standard deviations. With ``sigma = bandwidth_scale
    / nu`` (:func:`cos_gauss_kernels`) the FWHM is ``2 sqrt(2 ln 2) *
    centre_hz / (pi * bandwidth_scale)``. This is the untruncated
    Gaussian's width: a kernel cut to fewer taps than the Gaussian spans
    has a wider real response.

    Arguments
    ---------
    nu : torch.Tensor
        ``[n_filters]`` centre frequencies, fractions of Nyquist.
    bandwidth_scale : float or torch.Tensor
        Shared or ``[n_filters]`` scales, as in :func:`cos_gauss_kernels`.
    sample_rate : float
        Sample rate in Hz.

    Returns
    -------
    torch.Tensor
        ``[n_filters]`` FWHM in Hz.

    Example
    -------
    >>> fwhm = cos_gauss_fwhm_hz(torch.tensor([0.5]), 10.0, 8000)
    >>> round(float(fwhm), 2)  # 2000 Hz centre: 2.3548 * 2000 / (10 pi)
    149.91
    """
    spectral_sigma = sample_rate * nu / (2 * math.pi * bandwidth_scale)
    return _FWHM_PER_SIGMA * spectral_sigma


def cos_gauss_scale_for_fwhm(center_hz, fwhm_hz):
    """Bandwidth scales that give Cos-Gauss filters a wanted FWHM.

    The inverse of :func:`cos_gauss_fwhm_hz` (the sample rate cancels):
    ``bandwidth_scale = 2 sqrt(2 ln 2) * center_hz / (pi * fwhm_hz)``.

    Arguments
    ---------
    center_hz : torch.Tensor
        ``[n_filters]`` centre frequencies in Hz.
    fwhm_hz : torch.Tensor
        ``[n_filters]`` wanted full widths at half maximum in Hz (> 0).

    Returns
    -------
    torch.Tensor
        ``[n_filters]`` bandwidth scales.

    Example
    -------
    >>> fc, fwhm = torch.tensor([2000.0]), torch.tensor([150.0])
    >>> s = cos_gauss_scale_for_fwhm(fc, fwhm)
    >>> torch.allclose(cos_gauss_fwhm_hz(fc / 4000, s, 8000), fwhm)
    True
    """
    return _FWHM_PER_SIGMA * center_hz / (math.pi * fwhm_hz)


def neighbour_half_spacing(centers_hz, low_hz=None, high_hz=None):
    """Half the distance between the two neighbours of every centre.

    For ascending centres ``c`` this is ``(c[k+1] - c[k-1]) / 2``: the
    distance from the midpoint between ``c[k-1]`` and ``c[k]`` to the
    midpoint between ``c[k]`` and ``c[k+1]``, which is the half-height
    width of a triangular mel filter whose feet sit on the neighbouring
    centres. The missing outer neighbours are ``low_hz`` and ``high_hz``
    when given (the grid edges of a mel or linear filterbank), else the
    mirror images ``2 c[0] - c[1]`` and ``2 c[-1] - c[-2]``, so the outer
    filters get the spacing next to them.

    Arguments
    ---------
    centers_hz : torch.Tensor
        ``[n_filters]`` ascending centre frequencies in Hz.
    low_hz : float, optional
        Neighbour below the first centre.
    high_hz : float, optional
        Neighbour above the last centre.

    Returns
    -------
    torch.Tensor
        ``[n_filters]`` spacings in Hz.

    Example
    -------
    >>> neighbour_half_spacing(torch.tensor([100.0, 200.0, 400.0]))
    tensor([100., 150., 200.])
    >>> neighbour_half_spacing(torch.tensor([100.0, 200.0]), 0.0, 300.0)
    tensor([100., 100.])
    """
    c = centers_hz
    if c.numel() < 2 and (low_hz is None or high_hz is None):
        raise ValueError(
            "A single centre frequency has no neighbour to mirror: give "
            "low_hz and high_hz."
        )
    lo = 2 * c[:1] - c[1:2] if low_hz is None else c.new_tensor([low_hz])
    hi = 2 * c[-1:] - c[-2:-1] if high_hz is None else c.new_tensor([high_hz])
    points = torch.cat([lo, c, hi])
    return (points[2:] - points[:-2]) / 2


def sinc_kernels(low, high, kernel_size, window=None):
    """Windowed band-pass sinc kernels, as in SincNet.

    Each kernel is the difference of two ideal low-pass filters with cut-offs
    ``high`` and ``low`` (fractions of Nyquist), tapered by a Hamming window
    and divided by ``high - low`` so that its centre tap is 1, as in
    SincNet. Its pass-band gain is therefore about ``1 / (high - low)``,
    i.e. ``sample_rate / (2 * bandwidth_hz)``, not 1: narrow bands are
    amplified (the log compression turns this into a per-band offset).

    Arguments
    ---------
    low : torch.Tensor
        ``[n_filters]`` lower cut-offs, fractions of Nyquist.
    high : torch.Tensor
        ``[n_filters]`` upper cut-offs, fractions of Nyquist (> ``low``).
    kernel_size : int
        Odd number of taps.
    window : torch.Tensor, optional
        ``[kernel_size]`` taper; default a symmetric Hamming window.

    Returns
    -------
    torch.Tensor
        ``[n_filters, kernel_size]`` kernels.

    Example
    -------
    >>> k = sinc_kernels(torch.tensor([0.1]), torch.tensor([0.2]), 101)
    >>> k.shape
    torch.Size([1, 101])
    >>> float(k[0, 50])  # centre tap
    1.0
    >>> gain = torch.fft.rfft(k[0], 4000).abs()[300]  # 0.15 of Nyquist
    >>> round(float(gain), 1)  # about 1 / (0.2 - 0.1)
    10.0
    """
    n = kernel_taps(kernel_size, low.device, low.dtype)
    if window is None:
        window = frame_window(kernel_size, low.device, low.dtype)
    # torch.sinc(x) = sin(pi x) / (pi x); a low-pass with cut-off f (cycles
    # per sample) is 2 f sinc(2 f n), and f = nu / 2 here.
    lowpass_hi = high.unsqueeze(1) * torch.sinc(high.unsqueeze(1) * n)
    lowpass_lo = low.unsqueeze(1) * torch.sinc(low.unsqueeze(1) * n)
    band = (high - low).unsqueeze(1)
    return (lowpass_hi - lowpass_lo) * window / band


def frame_signal(
    wavs, win_length, hop_length, apply_window=True, gather=False
):
    """Cut ``[batch, time]`` waveforms into Hamming-windowed frames.

    The signal is reflect-padded by ``win_length // 2`` on each side, so
    frame ``t`` is centred on sample ``t * hop_length`` (a 10 s clip at
    44.1 kHz with 2048/1024 gives 431 frames).

    Arguments
    ---------
    wavs : torch.Tensor
        ``[batch, time]`` waveforms.
    win_length : int
        Frame length ``S`` in samples.
    hop_length : int
        Hop between frames in samples.
    apply_window : bool
        If False, return the unwindowed frames as a strided view of the
        padded signal (no copy); multiply by :func:`frame_window` later.
    gather : bool
        Build the frames by index gathering instead of ``Tensor.unfold``
        (same values; exports to ONNX).

    Returns
    -------
    torch.Tensor
        ``[batch, frames, win_length]`` frames.

    Example
    -------
    >>> frame_signal(torch.randn(2, 441000), 2048, 1024).shape
    torch.Size([2, 431, 2048])
    """
    pad = win_length // 2
    if wavs.shape[-1] <= pad:
        raise ValueError(
            f"Waveform of {wavs.shape[-1]} samples is too short: the "
            f"front-end needs more than win_length // 2 = {pad} samples "
            "(reflect padding). Pad short clips before the front-end."
        )
    padded = F.pad(wavs.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    if gather:
        n_frames = (padded.shape[-1] - win_length) // hop_length + 1
        starts = torch.arange(n_frames, device=wavs.device) * hop_length
        offsets = torch.arange(win_length, device=wavs.device)
        frames = padded[:, starts.unsqueeze(1) + offsets]
    else:
        frames = padded.unfold(-1, win_length, hop_length)
    if not apply_window:
        return frames
    return frames * frame_window(win_length, wavs.device, wavs.dtype)


def frame_window(win_length, device=None, dtype=torch.float32):
    """Return the symmetric Hamming window applied to every frame.

    Arguments
    ---------
    win_length : int
        Frame length.
    device : torch.device, optional
        Device of the result.
    dtype : torch.dtype
        Type of the result.

    Returns
    -------
    torch.Tensor
        ``[win_length]`` window.

    Example
    -------
    >>> frame_window(5)
    tensor([0.0800, 0.5400, 1.0000, 0.5400, 0.0800])
    """
    return torch.hamming_window(
        win_length, periodic=False, device=device, dtype=dtype
    )


def spectral_fft_size(win_length, kernel_size):
    """Smallest even 2-3-5-smooth FFT size holding a full linear convolution.

    Even, because a real FFT of odd length is much slower than one of a
    nearby even length (UrbanSound8k's 1102-sample frames and 705-tap
    kernels need at least 1806 points: 1920, not the odd 1875; the
    timings are in the README, "Training throughput").

    Arguments
    ---------
    win_length : int
        Frame length ``S``.
    kernel_size : int
        Kernel length ``K``.

    Returns
    -------
    int
        Even ``N >= S + K - 1`` whose only prime factors are 2, 3 and 5.

    Example
    -------
    >>> spectral_fft_size(2048, 705)
    2880
    >>> spectral_fft_size(1102, 705)
    1920
    """
    n = win_length + kernel_size - 1
    n += n % 2
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 2


def kernel_power_response(kernels, n_fft):
    """Parseval weights ``c[k] |G[k]|^2 / N`` of kernels on an rfft grid.

    ``c[k]`` is 2 for the bins that stand for two conjugate bins of the full
    FFT and 1 for DC (and Nyquist when ``N`` is even), so that the dot
    product with a frame's one-sided power spectrum ``|X[k]|^2`` is the
    energy of the full linear convolution when ``N >= S + K - 1``.

    Arguments
    ---------
    kernels : torch.Tensor
        ``[n_filters, kernel_size]`` kernels.
    n_fft : int
        FFT size ``N``.

    Returns
    -------
    torch.Tensor
        ``[n_filters, n_fft // 2 + 1]`` weights.

    Example
    -------
    >>> w = kernel_power_response(torch.tensor([[1.0]]), 8)
    >>> w
    tensor([[0.1250, 0.2500, 0.2500, 0.2500, 0.1250]])
    """
    power = torch.fft.rfft(kernels, n=n_fft).abs().pow(2)
    return power * _parseval_weights(n_fft, power.device, power.dtype)


def _parseval_weights(n_fft, device, dtype):
    """``c[k] / N`` of :func:`kernel_power_response` for the rfft bins."""
    weight = torch.full((n_fft // 2 + 1,), 2.0, device=device, dtype=dtype)
    weight[0] = 1.0
    if n_fft % 2 == 0:
        weight[-1] = 1.0
    return weight / n_fft


def real_dft_basis(n_samples, n_fft, device=None, dtype=torch.float32):
    """Cosine and sine matrices of the first ``n_samples`` of an rfft.

    ``x @ cos`` and ``x @ sin`` give the real part and minus the imaginary
    part of ``rfft(x, n=n_fft)`` for ``x`` of ``n_samples`` samples: an
    FFT-free transform that exports to ONNX and compiles anywhere.

    Arguments
    ---------
    n_samples : int
        Input length (at most ``n_fft``).
    n_fft : int
        Transform size.
    device : torch.device, optional
        Device of the result.
    dtype : torch.dtype
        Type of the result.

    Returns
    -------
    tuple of torch.Tensor
        ``cos`` and ``sin``, ``[n_samples, n_fft // 2 + 1]`` each.

    Example
    -------
    >>> x = torch.randn(3, 10)
    >>> cos, sin = real_dft_basis(10, 16)
    >>> ref = torch.fft.rfft(x, n=16)
    >>> torch.allclose(x @ cos, ref.real, atol=1e-5)
    True
    >>> torch.allclose(x @ sin, -ref.imag, atol=1e-5)
    True
    """
    n = torch.arange(n_samples, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
    # Reduce k * n modulo N in integers so the angle stays exact.
    phase = (torch.outer(n, k) % n_fft) * (2 * math.pi / n_fft)
    return (
        torch.cos(phase).to(device=device, dtype=dtype),
        torch.sin(phase).to(device=device, dtype=dtype),
    )


def dft_band_energy(frames, kernels, cos, sin, n_fft):
    """:func:`spectral_band_energy` with a real DFT basis instead of FFTs.

    Same result (Parseval on an ``n_fft``-point grid), computed with matrix
    products only, for ONNX export and graph compilers. Slower than the
    FFT path, since each frame's FFT becomes two dense products with the
    ``[win_length, n_fft // 2 + 1]`` basis (README, "Front-end modes").

    Arguments
    ---------
    frames : torch.Tensor
        ``[batch, frames, win_length]`` windowed frames.
    kernels : torch.Tensor
        ``[n_filters, kernel_size]`` kernels.
    cos : torch.Tensor
        ``[win_length, n_fft // 2 + 1]`` from :func:`real_dft_basis`.
    sin : torch.Tensor
        ``[win_length, n_fft // 2 + 1]`` from :func:`real_dft_basis`.
    n_fft : int
        FFT size of the basis, at least ``win_length + kernel_size - 1``.

    Returns
    -------
    torch.Tensor
        ``[batch, frames, n_filters]`` energies (sums, not means).

    Example
    -------
    >>> frames, kernels = torch.randn(1, 3, 64), torch.randn(4, 9)
    >>> cos, sin = real_dft_basis(64, 80)
    >>> e = dft_band_energy(frames, kernels, cos, sin, 80)
    >>> torch.allclose(e, spectral_band_energy(frames, kernels), rtol=1e-4)
    True
    """
    power = (frames @ cos).square() + (frames @ sin).square()
    k = kernels.shape[-1]
    response = (kernels @ cos[:k]).square() + (kernels @ sin[:k]).square()
    response = response * _parseval_weights(n_fft, cos.device, cos.dtype)
    return power @ response.transpose(0, 1)


def spectral_band_energy(
    frames, kernels, n_fft=None, window=None, chunk_elements=2**22
):
    """Sum of squared full-convolution outputs of every frame and kernel.

    Computed through Parseval: ``|rfft(frame)|^2 @ kernel_power_response``.
    Frames are transformed in chunks, so only the power spectrum (which the
    backward pass needs) is ever held for the whole batch: the padded FFT
    input and the complex spectrum exist for one chunk at a time.

    Arguments
    ---------
    frames : torch.Tensor
        ``[batch, frames, win_length]`` frames (may be a strided view).
    kernels : torch.Tensor
        ``[n_filters, kernel_size]`` kernels.
    n_fft : int, optional
        FFT size, at least ``win_length + kernel_size - 1``; default the
        smallest fast size (:func:`spectral_fft_size`).
    window : torch.Tensor, optional
        ``[win_length]`` window to multiply each frame by first.
    chunk_elements : int
        About how many FFT input samples to transform at once.

    Returns
    -------
    torch.Tensor
        ``[batch, frames, n_filters]`` energies (sums, not means).

    Example
    -------
    >>> frames = torch.randn(1, 3, 64)
    >>> kernels = torch.randn(4, 9)
    >>> e = spectral_band_energy(frames, kernels)
    >>> ref = conv_band_energy(frames, kernels, padding="full")
    >>> torch.allclose(e, ref, rtol=1e-4)
    True
    """
    batch, n_frames, win_length = frames.shape
    kernel_size = kernels.shape[-1]
    min_fft = win_length + kernel_size - 1
    if n_fft is None:
        n_fft = spectral_fft_size(win_length, kernel_size)
    elif n_fft < min_fft:
        raise ValueError(
            f"n_fft={n_fft} is too small for an exact linear convolution: "
            f"it must be at least win_length + kernel_size - 1 = {min_fft}."
        )
    response = kernel_power_response(kernels, n_fft).transpose(0, 1)
    step = max(1, chunk_elements // (n_fft * batch))
    graph = torch.jit.is_tracing() or torch.compiler.is_compiling()
    if graph:
        # A traced or compiled graph would freeze the chunk count of the
        # example input: one chunk keeps it valid for any length.
        step = n_frames
    # The usual case (no gradient into the waveform, eager): window each
    # chunk straight into one zero-padded buffer that every chunk reuses,
    # instead of a fresh zero-filled FFT input per chunk.
    buffer = None
    if not (graph or frames.requires_grad):
        buffer = frames.new_zeros(batch, min(step, n_frames), n_fft)
    energies = []
    for start in range(0, n_frames, step):
        chunk = frames[:, start : start + step]
        if buffer is None:
            if window is not None:
                chunk = chunk * window
            spec = torch.fft.rfft(chunk, n=n_fft)
        else:
            padded = buffer[:, : chunk.shape[1]]
            if window is None:
                padded[..., :win_length].copy_(chunk)
            else:
                torch.mul(chunk, window, out=padded[..., :win_length])
            spec = torch.fft.rfft(padded)
        power = spec.real.square()
        power.addcmul_(spec.imag, spec.imag)
        del spec
        energies.append(power @ response)
    return torch.cat(energies, dim=1)


def conv_band_energy(frames, kernels, padding="valid"):
    """Sum of squared time-domain convolution outputs (the reference way).

    Arguments
    ---------
    frames : torch.Tensor
        ``[batch, frames, win_length]`` windowed frames.
    kernels : torch.Tensor
        ``[n_filters, kernel_size]`` kernels (symmetric kernels make
        convolution and correlation the same).
    padding : str
        ``"valid"`` keeps the ``S - K + 1`` outputs where the kernel lies
        inside the frame (the reference); ``"full"`` keeps all ``S + K - 1``.

    Returns
    -------
    torch.Tensor
        ``[batch, frames, n_filters]`` energies (sums, not means).

    Example
    -------
    >>> conv_band_energy(torch.randn(2, 5, 64), torch.randn(3, 9)).shape
    torch.Size([2, 5, 3])
    """
    batch, n_frames, win_length = frames.shape
    kernel_size = kernels.shape[-1]
    if padding == "valid":
        pad = 0
    elif padding == "full":
        pad = kernel_size - 1
    else:
        raise ValueError(f"padding must be 'valid' or 'full', got {padding!r}")
    out = F.conv1d(
        frames.reshape(batch * n_frames, 1, win_length),
        kernels.flip(-1).unsqueeze(1),
        padding=pad,
    )
    energy = out.square().sum(-1)
    return energy.reshape(batch, n_frames, -1)


def compress_band_energy(
    energy, n_samples, log_eps=1e-3, compression=None, gain=None
):
    """Turn band energies into features: the tail all front-ends share.

    ``energy / n_samples`` (a sum of squares becomes a mean per sample),
    times ``gain`` if given, then ``log(. + log_eps)``; with a
    ``compression`` module (e.g.
    :class:`~speechbrain_relevance.lobes.compression.PCEN`) its output,
    cast to float32, instead of the log. Call it in float32 (autocast
    off): the energies span many decades.

    Arguments
    ---------
    energy : torch.Tensor
        ``[batch, frames, n_bands]`` band energies (sums of squares).
    n_samples : int or float
        What the sums are divided by (the learnable banks: the
        ``win_length - kernel_size + 1`` valid convolution outputs; the
        mel bank: ``win_length``).
    log_eps : float
        Added to the mean energies before the log (unused with a
        ``compression``).
    compression : callable, optional
        Maps the ``[batch, frames, n_bands]`` mean energies to features,
        replacing the log.
    gain : torch.Tensor, optional
        ``[n_bands]`` factors applied to the mean energies first.

    Returns
    -------
    torch.Tensor
        ``[batch, frames, n_bands]`` features.

    Example
    -------
    >>> energy = torch.tensor([[[0.0, 2.0]]])
    >>> compress_band_energy(energy, 2, log_eps=1.0)
    tensor([[[0.0000, 0.6931]]])
    >>> compress_band_energy(energy, 2, gain=torch.tensor([1.0, 0.5]),
    ...                      compression=torch.sqrt)
    tensor([[[0.0000, 0.7071]]])
    """
    energy = energy / n_samples
    if gain is not None:
        energy = energy * gain
    if compression is None:
        return torch.log(energy + log_eps)
    return compression(energy).float()


def valid_deltas(x):
    """Reference-style deltas and delta-deltas without padding.

    ``d[t] = ((x[t+1] - x[t-1]) + 2 (x[t+2] - x[t-2])) / 10`` is applied
    twice, each time losing two frames at each end, and the three channels
    are aligned on the ``frames - 8`` frames they share:
    ``[x[4:-4], d[2:-2], dd]``.

    Arguments
    ---------
    x : torch.Tensor
        ``[batch, frames, n_bands]`` features, at least 9 frames.

    Returns
    -------
    torch.Tensor
        ``[batch, 3, n_bands, frames - 8]``, the FCN's input layout.

    Example
    -------
    >>> valid_deltas(torch.randn(4, 431, 80)).shape
    torch.Size([4, 3, 80, 423])
    """
    if x.shape[1] < 9:
        raise ValueError(
            f"valid_deltas needs at least 9 frames, got {x.shape[1]}."
        )
    x = x.transpose(1, 2)

    def delta(y):
        return (
            (y[..., 3:-1] - y[..., 1:-3]) + 2 * (y[..., 4:] - y[..., :-4])
        ) / 10

    d = delta(x)
    dd = delta(d)
    return torch.stack([x[..., 4:-4], d[..., 2:-2], dd], dim=1)


def log_compression(x, log_eps):
    """Logarithm with a per-band offset: ``log(x + exp(log_eps))``.

    Arguments
    ---------
    x : torch.Tensor
        ``[..., n_bands]`` non-negative energies.
    log_eps : torch.Tensor
        ``[n_bands]`` (or broadcastable) log offsets.

    Returns
    -------
    torch.Tensor
        Log energies, same shape as ``x``.

    Example
    -------
    >>> log_compression(torch.zeros(1, 2), torch.tensor([0.0, -1.0]))
    tensor([[ 0., -1.]])
    """
    return torch.log(x + torch.exp(log_eps))


def ema_smoother(x, smooth_coef):
    """First-order IIR smoother along the frame axis.

    ``M[t] = (1 - s) M[t-1] + s x[t]`` with ``M[0] = x[0]``, run by
    ``torchaudio.functional.lfilter`` (differentiable with respect to the
    input and ``s``). ``lfilter`` starts from a zero state; since its
    zero-state output is ``y[t] = sum_{j<=t} s (1-s)^(t-j) x[j]``, the
    wanted state is added back as ``M[t] = y[t] + (1-s)^(t+1) x[0]``. For
    non-negative ``x`` every term is non-negative, unlike filtering
    ``x - x[0]`` and adding ``x[0]`` back, which cancels catastrophically
    once a loud first frame has decayed.

    Arguments
    ---------
    x : torch.Tensor
        ``[..., frames, n_bands]`` input.
    smooth_coef : torch.Tensor
        ``[n_bands]`` or ``[1]`` coefficients ``s`` in (0, 1].

    Returns
    -------
    torch.Tensor
        ``[..., frames, n_bands]`` smoothed input.

    Example
    -------
    >>> x = torch.tensor([[[1.0], [0.0], [0.0]]])
    >>> ema_smoother(x, torch.tensor([0.5])).flatten()
    tensor([1.0000, 0.5000, 0.2500])
    """
    n_frames, n_bands = x.shape[-2:]
    s = smooth_coef.to(x.dtype).expand(n_bands)
    decay = 1 - s
    b = torch.stack([s, torch.zeros_like(s)], dim=-1)
    a = torch.stack([torch.ones_like(s), -decay], dim=-1)
    y = torchaudio.functional.lfilter(
        x.transpose(-1, -2), a, b, clamp=False, batching=True
    ).transpose(-1, -2)
    steps = torch.arange(
        1, n_frames + 1, device=x.device, dtype=x.dtype
    ).unsqueeze(-1)
    return y + decay.pow(steps) * x[..., :1, :]


def pcen(x, alpha, delta, root, smooth_coef, floor=1e-6):
    """Per-channel energy normalisation (Wang et al., 2017).

    ``(x / (floor + M)^alpha + delta)^(1/root) - delta^(1/root)`` with
    ``M`` the :func:`ema_smoother` of ``x``: automatic gain control by the
    smoothed energy, then root compression.

    Arguments
    ---------
    x : torch.Tensor
        ``[..., frames, n_bands]`` non-negative energies.
    alpha : torch.Tensor
        ``[n_bands]`` gain-normalisation exponents.
    delta : torch.Tensor
        ``[n_bands]`` offsets (> 0).
    root : torch.Tensor
        ``[n_bands]`` compression roots (> 0).
    smooth_coef : torch.Tensor
        ``[n_bands]`` or ``[1]`` smoothing coefficients in (0, 1].
    floor : float
        Keeps the gain finite on silence.

    Returns
    -------
    torch.Tensor
        ``[..., frames, n_bands]`` normalised energies; 0 on silence.

    Example
    -------
    >>> ones = torch.ones(2)
    >>> out = pcen(torch.zeros(1, 5, 2), 0.98 * ones, 2 * ones, 2 * ones,
    ...            torch.tensor([0.04]))
    >>> out.shape, float(out.abs().max())
    (torch.Size([1, 5, 2]), 0.0)
    """
    smooth = ema_smoother(x, smooth_coef)
    inv_root = 1 / root
    gain = (floor + smooth).pow(alpha)
    return (x / gain + delta).pow(inv_root) - delta.pow(inv_root)


def check_positive_int(name, value):
    """Refuse anything but a positive integer (``bool`` included).

    Arguments
    ---------
    name : str
        The argument's name, for the message.
    value : object
        The value to check.

    Raises
    ------
    ValueError
        If ``value`` is not a positive ``int``.

    Example
    -------
    >>> check_positive_int("n_filters", 40)
    >>> check_positive_int("n_filters", 0)
    Traceback (most recent call last):
    ...
    ValueError: n_filters must be a positive integer, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_frequency_range(f_min, f_max, nyquist):
    """Require ``0 <= f_min < f_max <= nyquist`` (a front-end's band).

    Arguments
    ---------
    f_min : float
        Lowest frequency in Hz.
    f_max : float
        Highest frequency in Hz.
    nyquist : float
        Half the sample rate, in Hz.

    Raises
    ------
    ValueError
        If the range is empty or leaves ``[0, nyquist]``.

    Example
    -------
    >>> check_frequency_range(0.0, 4000.0, 4000.0)
    >>> check_frequency_range(300.0, 5000.0, 4000.0)
    Traceback (most recent call last):
    ...
    ValueError: Need 0 <= f_min < f_max <= Nyquist (4000.0 Hz), got ...
    """
    if not 0 <= f_min < f_max <= nyquist:
        raise ValueError(
            f"Need 0 <= f_min < f_max <= Nyquist ({nyquist} Hz), got "
            f"f_min={f_min}, f_max={f_max}"
        )


def check_compression(log_eps, compression):
    """Check the arguments of :func:`compress_band_energy`'s modules.

    A front-end takes a log offset ``log_eps`` (> 0) and an optional
    ``compression`` module that replaces the log; the check runs when
    the front-end is built, not at its first batch.

    Arguments
    ---------
    log_eps : float
        Offset added before the log.
    compression : torch.nn.Module or None
        The module that replaces the log, if any.

    Raises
    ------
    ValueError
        If ``log_eps`` is not positive.
    TypeError
        If ``compression`` is neither None nor an ``nn.Module``.

    Example
    -------
    >>> check_compression(1e-3, torch.nn.Identity())
    >>> check_compression(0.0, None)
    Traceback (most recent call last):
    ...
    ValueError: log_eps must be > 0, got 0.0
    """
    if not log_eps > 0:
        raise ValueError(f"log_eps must be > 0, got {log_eps}")
    if compression is not None and not isinstance(
        compression, torch.nn.Module
    ):
        raise TypeError(
            "compression must be an nn.Module (e.g. PCEN) or None, got "
            f"{type(compression).__name__}"
        )


def check_waveforms(name, wavs, wav_lens=None):
    """Check a front-end's inputs; return ``[batch, time]`` waveforms.

    Arguments
    ---------
    name : str
        The front-end's name, for the messages.
    wavs : torch.Tensor
        ``[batch, time]`` mono waveforms (``[batch, time, 1]`` is
        accepted and squeezed).
    wav_lens : torch.Tensor, optional
        One relative length in [0, 1] per waveform.

    Returns
    -------
    torch.Tensor
        ``[batch, time]`` waveforms.

    Raises
    ------
    ValueError
        If the waveforms are not mono ``[batch, time]`` or the lengths do
        not fit them.

    Example
    -------
    >>> check_waveforms("MelFilterbank", torch.zeros(2, 100, 1)).shape
    torch.Size([2, 100])
    >>> check_waveforms("MelFilterbank", torch.zeros(2, 100, 2))
    Traceback (most recent call last):
    ...
    ValueError: MelFilterbank expects [batch, time] mono waveforms, ...
    >>> check_waveforms("MelFilterbank", torch.zeros(2, 100),
    ...                 torch.tensor([1.0, 1.5]))
    Traceback (most recent call last):
    ...
    ValueError: wav_lens must hold one relative length in [0, 1] per ...
    """
    if wavs.dim() == 3 and wavs.shape[-1] == 1:
        wavs = wavs.squeeze(-1)
    if wavs.dim() != 2:
        raise ValueError(
            f"{name} expects [batch, time] mono waveforms, got shape "
            f"{tuple(wavs.shape)}; downmix multi-channel audio first."
        )
    if wav_lens is not None and (
        wav_lens.shape[0] != wavs.shape[0]
        or bool((wav_lens < 0).any() | (wav_lens > 1).any())
    ):
        raise ValueError(
            "wav_lens must hold one relative length in [0, 1] per "
            f"waveform, got {wav_lens.tolist()}"
        )
    return wavs
