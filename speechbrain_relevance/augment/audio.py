"""Waveform augmentations: mixing, pitch shift, time stretch, noise.

The signal functions behind the paper's offline augmentation of the
DCASE2020 Task 1A training set, usable on any clips:

* :func:`mix_same_class`: two clips of the same class, each scaled by
  U(0.5, 1), summed;
* :func:`pitch_shift`: pitch shift by a number of semitones, tempo kept;
* :func:`time_stretch`: tempo change, cropped or tiled back to the
  original length;
* :func:`add_noise`: additive white or pink noise at a given SNR.

The DCASE2020 recipe's writer, which draws, writes and resumes the
augmented copies of a training manifest, and its spectrum correction
(recording-device responses estimated on the manifest's time-aligned
parallel recordings) are ``recipes/DCASE2020/augment_dcase2020.py``.

Authors
 * speechbrain-relevance developers
"""

import math

import torch
import torchaudio.functional as AF

from speechbrain_relevance.data.audio import fit_length


def _uniform(low, high, generator):
    """Draw one float from U(low, high) with ``generator``."""
    u = torch.rand((), generator=generator, dtype=torch.float64).item()
    return low + (high - low) * u


def mix_same_class(
    y1, y2, generator=None, gain_range=(0.5, 1.0), gains=None
):
    """Mix two clips of the same class with random gains.

    Computes ``y1 * g1 + y2 * g2`` with ``g1, g2 ~ U(0.5, 1)``. ``y2`` is
    tiled or cropped to the length of ``y1`` so the output keeps the first
    clip's duration.

    Arguments
    ---------
    y1 : torch.Tensor
        ``[time]`` first clip; sets the output length.
    y2 : torch.Tensor
        ``[time]`` second clip of the same class.
    generator : torch.Generator, optional
        Source of the random gains.
    gain_range : tuple of float
        Bounds of the uniform gains.
    gains : tuple of float, optional
        Use these ``(g1, g2)`` instead of drawing them.

    Returns
    -------
    torch.Tensor
        ``[time]`` mixture, as long as ``y1``.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> y1, y2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    >>> mix = mix_same_class(y1, y2, g)  # = [g1, g2]
    >>> bool(((mix >= 0.5) & (mix <= 1.0)).all())
    True
    """
    if gains is None:
        gains = (
            _uniform(*gain_range, generator),
            _uniform(*gain_range, generator),
        )
    g1, g2 = gains
    y2 = fit_length(y2, y1.shape[-1], mode="tile")
    return y1 * g1 + y2 * g2


def _largest_divisor(n, limit):
    """Return the largest divisor of ``n`` that is at most ``limit``."""
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def resample_friendly_steps(n_steps, sample_rate, max_denominator=500):
    """Round a pitch shift so torchaudio can resample it cheaply.

    ``torchaudio.functional.pitch_shift`` resamples from
    ``int(sample_rate * 2 ** (n_steps / 12))`` Hz to ``sample_rate`` Hz, and
    its polyphase resampler builds one filter per output phase, i.e.
    ``sample_rate / gcd`` of them. For an arbitrary shift the gcd is tiny
    and a 10 s clip at 44.1 kHz then needs many GB and minutes. Moving the
    shift by a few hundredths of a semitone, so that the intermediate rate
    is a multiple of ``sample_rate / q`` with ``q <= max_denominator``,
    keeps the resampler small.

    Arguments
    ---------
    n_steps : float
        Wanted shift in semitones.
    sample_rate : int
        Sample rate of the audio.
    max_denominator : int
        Most output phases the resampler may have.

    Returns
    -------
    float
        Shift in semitones to pass to torchaudio (within about 0.04
        semitones of ``n_steps`` at 44.1 kHz).

    Example
    -------
    >>> steps = resample_friendly_steps(2.37, 44100)
    >>> abs(steps - 2.37) < 0.04
    True
    >>> int(44100 * 2 ** (steps / 12)) % 90
    0
    """
    unit = sample_rate // _largest_divisor(sample_rate, max_denominator)
    k = max(1, round(sample_rate * 2.0 ** (n_steps / 12.0) / unit))
    # Half a hertz above the multiple, so that torchaudio's int() truncation
    # lands on it despite floating-point error in 2 ** x.
    return 12.0 * math.log2((k * unit + 0.5) / sample_rate)


def pitch_shift(y, sample_rate, n_steps, n_fft=2048, hop_length=None):
    """Shift the pitch of a clip by ``n_steps`` semitones, keeping tempo.

    Uses ``torchaudio.functional.pitch_shift`` (phase-vocoder stretch, then
    resampling), after rounding the shift with
    :func:`resample_friendly_steps` so the resampling stays cheap.

    Arguments
    ---------
    y : torch.Tensor
        ``[..., time]`` audio.
    sample_rate : int
        Sample rate of ``y``.
    n_steps : float
        Shift in semitones (the driver draws U(-4, 4)).
    n_fft : int
        STFT size of the phase vocoder (2048 = 46 ms at 44.1 kHz resolves
        low frequencies better than torchaudio's default of 512).
    hop_length : int, optional
        STFT hop, ``n_fft // 4`` by default.

    Returns
    -------
    torch.Tensor
        Shifted audio, same shape as ``y``.

    Example
    -------
    >>> t = torch.arange(8000) / 8000
    >>> y = pitch_shift(torch.sin(2 * torch.pi * 500 * t), 8000, 12, n_fft=512)
    >>> y.shape
    torch.Size([8000])
    >>> int(torch.fft.rfft(y).abs().argmax())  # 1 Hz bins: one octave up
    1000
    """
    steps = resample_friendly_steps(n_steps, sample_rate)
    return AF.pitch_shift(
        y, sample_rate, steps, n_fft=n_fft, hop_length=hop_length
    )


def time_stretch(y, rate, n_samples=None, n_fft=2048, hop_length=None):
    """Change the tempo of a clip without changing its pitch.

    The complex STFT is resampled in time by
    ``torchaudio.functional.phase_vocoder`` and inverted; the result,
    ``len / rate`` samples long, is then cropped (slower, ``rate < 1``) or
    tiled (faster, ``rate > 1``) to ``n_samples``.

    Arguments
    ---------
    y : torch.Tensor
        ``[..., time]`` audio.
    rate : float
        Speed factor: 2 plays twice as fast, 0.5 half as fast.
    n_samples : int, optional
        Output length, that of ``y`` by default.
    n_fft : int
        STFT size.
    hop_length : int, optional
        STFT hop, ``n_fft // 4`` by default.

    Returns
    -------
    torch.Tensor
        ``[..., n_samples]`` audio.

    Example
    -------
    >>> t = torch.arange(8000) / 8000
    >>> y = time_stretch(torch.sin(2 * torch.pi * 500 * t), 1.5, n_fft=512)
    >>> y.shape
    torch.Size([8000])
    >>> int(torch.fft.rfft(y).abs().argmax())  # same pitch
    500
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if hop_length is None:
        hop_length = n_fft // 4
    if n_samples is None:
        n_samples = y.shape[-1]
    shape = y.shape
    flat = y.reshape(-1, shape[-1])
    window = torch.hann_window(n_fft, device=y.device, dtype=y.dtype)
    spec = torch.stft(
        flat, n_fft, hop_length, window=window, center=True,
        pad_mode="reflect", return_complex=True,
    )
    # Expected phase advance per hop of each bin's centre frequency.
    phase_advance = torch.linspace(
        0, math.pi * hop_length, spec.shape[-2], device=y.device,
        dtype=y.dtype,
    )[..., None]
    stretched = AF.phase_vocoder(spec, rate, phase_advance)
    out = torch.istft(
        stretched, n_fft, hop_length, window=window,
        length=max(1, round(shape[-1] / rate)),
    )
    out = fit_length(out, n_samples, mode="tile")
    return out.reshape(*shape[:-1], n_samples)


def _noise(n_samples, kind, generator, dtype=torch.float32):
    """Return unit-variance white or pink (1/f power) noise."""
    white = torch.randn(n_samples, generator=generator, dtype=dtype)
    if kind == "white":
        return white
    if kind != "pink":
        raise ValueError(f"noise kind must be 'white' or 'pink', got {kind!r}")
    spec = torch.fft.rfft(white)
    freqs = torch.arange(spec.shape[-1], dtype=dtype)
    # 1/f power means 1/sqrt(f) amplitude; DC is dropped.
    spec = spec / freqs.clamp_min(1.0).sqrt()
    spec[0] = 0
    pink = torch.fft.irfft(spec, n=n_samples)
    return pink / pink.std().clamp_min(1e-12)


def add_noise(y, snr_db, generator=None, kind="white"):
    """Add white or pink noise at a given signal-to-noise ratio.

    Uses ``torchaudio.functional.add_noise``, which scales the noise so that
    ``10 log10(sum y^2 / sum noise^2)`` equals ``snr_db`` over the clip.

    Arguments
    ---------
    y : torch.Tensor
        ``[time]`` audio.
    snr_db : float
        Signal-to-noise ratio in dB.
    generator : torch.Generator, optional
        Source of the noise.
    kind : str
        ``"white"`` or ``"pink"``.

    Returns
    -------
    torch.Tensor
        ``[time]`` noisy audio (a silent clip stays silent).

    Example
    -------
    >>> y = torch.sin(torch.arange(1000.0))
    >>> noisy = add_noise(y, 20.0, torch.Generator().manual_seed(0))
    >>> snr = 10 * torch.log10(y.pow(2).sum() / (noisy - y).pow(2).sum())
    >>> round(float(snr), 3)
    20.0
    """
    noise = _noise(y.shape[-1], kind, generator, dtype=y.dtype)
    snr = torch.tensor(float(snr_db), dtype=y.dtype)
    return AF.add_noise(y, noise, snr)
