"""Learnable time-domain filterbank front-ends (Cos-Gauss and SincNet).

One framing and energy engine, :class:`LearnableFilterbank`, turns
``[batch, time]`` waveforms into log band energies
``[batch, frames, n_filters]``. The kernel families differ only in how the
kernels are built from their parameters:

* :class:`CosGaussFilterbank`: cosine-modulated Gaussians with a learnable
  centre frequency each (the paper's acoustic filterbank layer).
* :class:`SincFilterbank`: SincNet's band-pass sinc kernels with a learnable
  low cut-off and band width each (the paper's SincNet baseline).

Both run in ``"spectral"`` mode (Parseval, fast, the default) or ``"conv"``
mode (time-domain convolution of every frame, the authors' reference
computation).

Options, all off by default (the defaults reproduce the paper's layer and
its checkpoints): a learnable gain per filter (``learn_gain``), any
``compression`` module in place of the log (e.g.
:class:`~speechbrain_relevance.lobes.compression.PCEN`) and, for Cos-Gauss,
mel-matched and learnable bandwidths (``bandwidth_scale="mel"``,
``learn_bandwidth``).

Authors
 * speechbrain-relevance developers
"""

import logging
import math

import torch
import torch.nn as nn

from speechbrain_relevance.lobes import functional as fb

logger = logging.getLogger(__name__)

# Centre frequencies live strictly inside (0, Nyquist): the sigmoid is
# squeezed by this margin, so no optimiser step can reach 0 Hz (where the
# Gaussian's width divides by zero) or Nyquist, even once fp32 saturates.
_NU_MARGIN = 1e-5

# Per-filter bandwidth scales are clamped to [1e-4, 1e4] (any useful width
# lies far inside): below, the Gaussian's gradient overflows (0 * inf);
# above, exp overflows. Both would turn one bad step into NaNs.
_LOG_BANDWIDTH_RANGE = (math.log(1e-4), math.log(1e4))

# The paper's framing at 44.1 kHz (2048 / 1024 / 705 samples), as durations:
# the defaults at any other sample rate keep the same time resolution.
PAPER_SAMPLE_RATE = 44100
PAPER_LENGTHS = {"win_length": 2048, "hop_length": 1024, "kernel_size": 705}


def length_in_samples(name, value, sample_rate, odd=False):
    """Turn a frame, hop or kernel length into samples.

    Lengths are in samples (an ``int``), or durations written with their
    unit (``"25ms"``, ``"0.025s"``), as SpeechBrain's ``Fbank`` takes
    milliseconds. ``None`` gives the paper's duration at ``sample_rate``.
    An integer so short that it was surely meant in milliseconds is
    refused with a message that names the units.

    Arguments
    ---------
    name : str
        ``"win_length"``, ``"hop_length"`` or ``"kernel_size"``.
    value : int, str or None
        The length.
    sample_rate : int
        Sample rate in Hz.
    odd : bool
        Round a duration up to an odd number of samples (symmetric
        kernels).

    Returns
    -------
    int
        The length in samples.

    Example
    -------
    >>> length_in_samples("win_length", "25ms", 16000)
    400
    >>> length_in_samples("kernel_size", None, 16000, odd=True)
    257
    >>> length_in_samples("win_length", 25, 16000)
    Traceback (most recent call last):
    ...
    ValueError: win_length=25 samples is only 1.56 ms at 16000 Hz. ...
    """
    if value is None:
        seconds = PAPER_LENGTHS[name] / PAPER_SAMPLE_RATE
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            if text.endswith("ms"):
                seconds = float(text[:-2]) / 1000
            elif text.endswith("s"):
                seconds = float(text[:-1])
            else:
                raise ValueError(text)
        except ValueError:
            raise ValueError(
                f"{name}={value!r}: give samples (an integer) or a duration "
                "with its unit, e.g. '25ms' or '0.025s'"
            ) from None
    else:
        fb.check_positive_int(name, value)
        # Under 2 ms no frame or kernel resolves audio: a length copied
        # from an Fbank yaml (milliseconds) is the likely cause.
        if value * 1000 < 2 * sample_rate and value < 64:
            ms = 1000 * value / sample_rate
            raise ValueError(
                f"{name}={value} samples is only {ms:.2f} ms at "
                f"{sample_rate} Hz. Lengths here are in samples, while "
                f"SpeechBrain's Fbank takes milliseconds: write "
                f"{name}='{value}ms' (= "
                f"{round(value * sample_rate / 1000)} samples)"
            )
        return int(value)
    n = max(1, round(seconds * sample_rate))
    if odd and n % 2 == 0:
        n += 1
    return n



class LearnableFilterbank(nn.Module):
    """Framing and energy engine shared by the learnable filterbanks.

    Subclasses implement :meth:`_unsorted_filters`, returning the centre
    frequencies (fractions of Nyquist) and kernels of their filters; this
    class sorts them by centre frequency, frames the waveform (reflect
    padding of ``win_length // 2``, symmetric Hamming window), computes the
    band energies and takes ``log(energy / (win_length - kernel_size + 1) +
    log_eps)`` (the tail all front-ends share,
    :func:`~speechbrain_relevance.lobes.functional.compress_band_energy`).

    With ``learn_gain=True`` each filter has a learnable log gain
    ``log_gain`` (initialised to 0): the normalised energies are multiplied
    by ``exp(log_gain)`` before the log; gains follow their filters when
    the filters are re-sorted. :meth:`kernels` returns the kernels without
    the gain. With a ``compression`` module the normalised (and gained)
    energies ``energy / (win_length - kernel_size + 1)``, ``[batch, frames,
    n_filters]``, go through it instead of the log (``log_eps`` is then
    unused); it runs with autocast disabled, in fp32, like the rest of the
    engine. ``freeze`` does not touch the compression module's parameters.

    The energies are normalised by the number of "valid" convolution
    outputs, ``win_length - kernel_size + 1``, as the reference averages
    over them. ``mode="spectral"`` equals ``mode="conv", padding="full"``
    (to float precision). Against the reference's ``padding="valid"`` it
    differs only through the edge outputs that valid mode drops, where the
    kernel only partly overlaps the frame. The difference is largest for
    the lowest, longest filters and for bands that hold little energy
    (distant from the tones of a tonal signal), where the edge transients
    dominate; ``benchmarks/spectral_vs_valid.py`` measures it (figures in
    the README and ``benchmarks/results/spectral_vs_valid.json``). Use
    ``mode="conv", padding="valid"`` where agreement with the reference
    matters more than speed.

    Arguments
    ---------
    n_filters : int
        Number of filters (output features).
    sample_rate : int
        Sample rate of the input in Hz.
    win_length : int or str
        Frame length in samples, or a duration such as ``"46ms"`` (see
        :func:`length_in_samples`).
    hop_length : int or str
        Hop between frames, in samples or as a duration.
    kernel_size : int or str
        Kernel length in samples (or a duration, rounded to an odd
        count), at most ``win_length``.
    mode : str
        ``"spectral"`` (Parseval with FFTs, default), ``"dft"`` (the same
        with a real DFT basis and matrix products only: exports to ONNX
        and TorchScript, slower) or ``"conv"`` (time domain).
    padding : str
        Convolution padding in conv mode: ``"valid"`` (the reference) or
        ``"full"``. Spectral mode always computes the full convolution.
    log_eps : float
        Added to the energies before the log.
    freeze : bool
        If True, the filter parameters (gains included) are not trained.
    learn_gain : bool
        If True, learn a gain per filter (parameter ``log_gain``).
    compression : torch.nn.Module, optional
        Applied to the ``[batch, frames, n_filters]`` normalised energies
        instead of ``log(. + log_eps)``; its output is returned.
    """

    def __init__(
        self,
        n_filters,
        sample_rate,
        win_length,
        hop_length,
        kernel_size,
        mode="spectral",
        padding="valid",
        log_eps=1e-3,
        freeze=False,
        learn_gain=False,
        compression=None,
    ):
        super().__init__()
        fb.check_positive_int("n_filters", n_filters)
        fb.check_positive_int("sample_rate", sample_rate)
        win_length = length_in_samples("win_length", win_length, sample_rate)
        hop_length = length_in_samples("hop_length", hop_length, sample_rate)
        kernel_size = length_in_samples(
            "kernel_size", kernel_size, sample_rate, odd=True
        )
        if kernel_size > win_length:
            raise ValueError(
                f"kernel_size={kernel_size} samples is longer than the "
                f"frame (win_length={win_length} samples): the reference's "
                "valid convolution would have no output."
            )
        if mode not in ("spectral", "dft", "conv"):
            raise ValueError(
                f"mode must be 'spectral', 'dft' or 'conv', got {mode!r}"
            )
        if padding not in ("valid", "full"):
            raise ValueError(
                f"padding must be 'valid' or 'full', got {padding!r}"
            )
        fb.check_compression(log_eps, compression)
        self.n_filters = n_filters
        self.sample_rate = sample_rate
        self.win_length = win_length
        self.hop_length = hop_length
        self.kernel_size = kernel_size
        self.mode = mode
        self.padding = padding
        self.log_eps = log_eps
        self.freeze = freeze
        self.n_fft = fb.spectral_fft_size(win_length, kernel_size)
        # Constant tensors are buffers, built once: exporters (ONNX) cannot
        # translate window functions, and the forward pass need not redo
        # them. Non-persistent: not in checkpoints.
        self.register_buffer(
            "_window", fb.frame_window(win_length), persistent=False
        )
        if mode == "dft":
            # Not in the state dict: checkpoints stay interchangeable
            # between modes.
            cos, sin = fb.real_dft_basis(win_length, self.n_fft)
            self.register_buffer("_dft_cos", cos, persistent=False)
            self.register_buffer("_dft_sin", sin, persistent=False)
        self.learn_gain = bool(learn_gain)
        if self.learn_gain:
            self.log_gain = nn.Parameter(
                torch.zeros(n_filters), requires_grad=not freeze
            )
        self.compression = compression

    def _unsorted_filters(self):
        """Return ``(nu, kernels)`` in parameter order (subclasses)."""
        raise NotImplementedError

    def _sorted_filters(self):
        """Return ``(nu, kernels, order)``, sorted by centre frequency.

        ``order`` maps sorted positions to parameter indices, for any other
        per-filter parameter that must follow its filter.
        """
        nu, kernels = self._unsorted_filters()
        order = torch.argsort(nu.detach())
        return nu[order], kernels[order], order

    def center_frequencies(self):
        """Return the current centre frequencies in Hz, ascending.

        Returns
        -------
        torch.Tensor
            ``[n_filters]`` centre frequencies in Hz (detached).
        """
        with torch.no_grad():
            nu, _, _ = self._sorted_filters()
        return nu * (self.sample_rate / 2)

    def kernels(self):
        """Return the current kernels, sorted by centre frequency.

        Returns
        -------
        torch.Tensor
            ``[n_filters, kernel_size]`` kernels (differentiable).
        """
        return self._sorted_filters()[1]

    def forward(self, wavs, wav_lens=None):
        """Compute log (or ``compression``-ed) band energies.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` waveforms (``[batch, time, 1]`` is accepted).
        wav_lens : torch.Tensor, optional
            Relative lengths in [0, 1]. The features of every frame are
            computed; the relative lengths carry over to the frame axis
            unchanged, so callers pass the same ``wav_lens`` on.

        Returns
        -------
        torch.Tensor
            ``[batch, frames, n_filters]`` log energies (or the
            compression's output) in float32, with
            ``frames = 1 + time // hop_length``.
        """
        wavs = fb.check_waveforms(type(self).__name__, wavs, wav_lens)
        # The filters and their energies need the fp32 range (energies
        # span many decades before the log): compute in fp32 even under
        # bf16/fp16 autocast.
        with torch.autocast(device_type=wavs.device.type, enabled=False):
            wavs = wavs.float()
            _, kernels, order = self._sorted_filters()
            if self.mode == "spectral":
                # Windowing happens chunk by chunk inside, on a view.
                frames = fb.frame_signal(
                    wavs, self.win_length, self.hop_length, apply_window=False
                )
                energy = fb.spectral_band_energy(
                    frames, kernels, self.n_fft, window=self._window
                )
            elif self.mode == "dft":
                frames = self._window * fb.frame_signal(
                    wavs,
                    self.win_length,
                    self.hop_length,
                    apply_window=False,
                    gather=True,
                )
                energy = fb.dft_band_energy(
                    frames, kernels, self._dft_cos, self._dft_sin, self.n_fft
                )
            else:
                frames = self._window * fb.frame_signal(
                    wavs, self.win_length, self.hop_length, apply_window=False
                )
                energy = fb.conv_band_energy(frames, kernels, self.padding)
            gain = None
            if self.learn_gain:
                gain = torch.exp(self.log_gain)[order]
            return fb.compress_band_energy(
                energy,
                self.win_length - self.kernel_size + 1,
                self.log_eps,
                self.compression,
                gain,
            )

    def extra_repr(self):
        """Summarise the configuration."""
        return (
            f"n_filters={self.n_filters}, sample_rate={self.sample_rate}, "
            f"win_length={self.win_length}, hop_length={self.hop_length}, "
            f"kernel_size={self.kernel_size}, mode={self.mode!r}, "
            f"padding={self.padding!r}, freeze={self.freeze}, "
            f"learn_gain={self.learn_gain}"
        )


class CosGaussFilterbank(LearnableFilterbank):
    """Learnable cosine-modulated Gaussian filterbank (Cos-Gauss).

    Each filter has one unconstrained parameter ``theta``; its centre
    frequency is ``sigmoid(theta)`` times Nyquist (squeezed by 1e-5 so it
    stays strictly inside (0, Nyquist)). The kernel is
    ``cos(pi nu n) exp(-n^2 / (2 sigma^2))``, ``sigma = bandwidth_scale /
    nu`` samples, over ``kernel_size`` taps centred on 0: a constant-Q bank
    (centre / spectral sigma = ``bandwidth_scale * pi``). Filters are sorted
    by centre frequency on every forward pass, so band ``k`` of the output
    is always the ``k``-th lowest filter.

    Bandwidths. A float ``bandwidth_scale`` (the default, 10) is shared by
    all filters and is not a parameter: the state dict holds ``theta``
    only, as in the paper. Such narrow constant-Q filters (spectral FWHM
    ``2 sqrt(2 ln 2) fc / (10 pi)``, 7.5 % of the centre) leave gaps
    between mel-spaced centres. ``bandwidth_scale="mel"`` gives every
    filter its own scale, chosen so that at init its Gaussian's spectral
    FWHM equals half the distance between its two neighbouring centres
    (:func:`~speechbrain_relevance.lobes.functional.neighbour_half_spacing`:
    the half-height width of the mel triangle spanning the neighbours, so
    neighbouring filters cross near half height). FWHM here is that of the
    amplitude response ``|G(f)|``; the power response ``|G(f)|^2``, which
    weights the energies, is ``sqrt(2)`` narrower. The outer neighbours are
    the grid edges ``f_min`` and ``f_max`` for the ``"mel"`` and
    ``"linear"`` inits; for explicit and random centres they are the
    mirror images of the second and second-last centres (the spacing of
    the given centres). Per-filter scales live in ``log_bandwidth``
    (``[n_filters]``, log of the scale, clamped to [1e-4, 1e4] when
    used): a parameter with ``learn_bandwidth=True`` (also with a float
    scale, as the init of every filter), else a persistent buffer, so
    exported models carry them. It is in parameter order, like ``theta``,
    and follows its filter when the filters are re-sorted.
    :meth:`bandwidths_hz` reports the widths.

    See :class:`LearnableFilterbank` for the framing, the modes and how
    spectral mode relates to the reference's valid convolution.

    Arguments
    ---------
    n_filters : int
        Number of filters.
    sample_rate : int
        Sample rate in Hz.
    win_length : int or str, optional
        Frame length in samples or as a duration (``"25ms"``); default the
        paper's 2048 samples at 44.1 kHz (46.4 ms) at ``sample_rate``.
    hop_length : int or str, optional
        Hop; default the paper's 1024 samples at 44.1 kHz (23.2 ms).
    kernel_size : int or str, optional
        Taps per kernel; default the paper's 705 taps at 44.1 kHz (16 ms,
        rounded to an odd count).
    init : str or sequence of float
        ``"mel"`` (centres of a mel filterbank between ``f_min`` and
        ``f_max``), ``"linear"``, ``"random"`` (``theta ~ U(-3.7, 1.3)``,
        about 530 Hz to 17.3 kHz, as the authors' code), or explicit
        centre frequencies in Hz.
    f_min : float
        Lowest frequency for the mel and linear inits, in Hz.
    f_max : float, optional
        Highest frequency for the mel and linear inits (default Nyquist).
    bandwidth_scale : float or str
        Gaussian width in periods (10 as the authors' code; 2 gives the
        paper's equation 1), or ``"mel"`` (see above).
    learn_bandwidth : bool
        If True, learn one bandwidth scale per filter (``log_bandwidth``).
        Keyword only.
    **kwargs
        The engine's options, by keyword: ``mode`` (``"spectral"``,
        ``"dft"``, exportable, or ``"conv"``), ``padding`` (``"valid"`` or
        ``"full"``, conv mode), ``log_eps``, ``freeze``, ``learn_gain`` and
        ``compression``, as in :class:`LearnableFilterbank`. With
        ``freeze=True`` the centre frequencies (and the bandwidths and
        gains, when learnable) are not trained.

    Example
    -------
    >>> fbank = CosGaussFilterbank(n_filters=80, sample_rate=44100)
    >>> feats = fbank(torch.randn(2, 44100))
    >>> feats.shape
    torch.Size([2, 44, 80])
    >>> fc = fbank.center_frequencies()
    >>> bool((fc[1:] >= fc[:-1]).all()), fbank.kernels().shape
    (True, torch.Size([80, 705]))
    >>> list(fbank.state_dict())
    ['theta']
    >>> fbank = CosGaussFilterbank(
    ...     n_filters=40, sample_rate=8000, win_length=200, hop_length=80,
    ...     kernel_size=129, bandwidth_scale="mel", learn_bandwidth=True,
    ...     learn_gain=True)
    >>> sorted(name for name, _ in fbank.named_parameters())
    ['log_bandwidth', 'log_gain', 'theta']
    >>> fbank(torch.randn(2, 8000)).shape, fbank.bandwidths_hz().shape
    (torch.Size([2, 101, 40]), torch.Size([40]))
    """

    def __init__(
        self,
        n_filters=80,
        sample_rate=44100,
        win_length=None,
        hop_length=None,
        kernel_size=None,
        init="mel",
        f_min=0.0,
        f_max=None,
        bandwidth_scale=10.0,
        *,
        learn_bandwidth=False,
        **kwargs,
    ):
        super().__init__(
            n_filters, sample_rate, win_length, hop_length, kernel_size,
            **kwargs,
        )
        mel_bandwidth = isinstance(bandwidth_scale, str)
        if mel_bandwidth and bandwidth_scale != "mel":
            raise ValueError(
                "bandwidth_scale must be a positive float or 'mel', got "
                f"{bandwidth_scale!r}"
            )
        if not mel_bandwidth and not bandwidth_scale > 0:
            raise ValueError(
                f"bandwidth_scale must be > 0, got {bandwidth_scale}"
            )
        self.bandwidth_scale = (
            bandwidth_scale if mel_bandwidth else float(bandwidth_scale)
        )
        self.learn_bandwidth = bool(learn_bandwidth)
        nyquist = sample_rate / 2
        random_init = isinstance(init, str) and init == "random"
        if random_init:
            theta = torch.empty(n_filters).uniform_(-3.7, 1.3)
            hz = _theta_to_nu(theta).double() * nyquist
        else:
            hz = _init_center_frequencies(
                init, n_filters, f_min, f_max, nyquist
            )
            theta = _nu_to_theta(hz / nyquist)
        self.theta = nn.Parameter(theta, requires_grad=not self.freeze)
        if mel_bandwidth:
            edges = (None, None)
            if isinstance(init, str) and not random_init:
                # A mel or linear grid: its edges are the outer neighbours.
                edges = (f_min, nyquist if f_max is None else f_max)
            actual_hz = _theta_to_nu(theta).double() * nyquist
            scales = _mel_bandwidth_scales(hz.double(), actual_hz, *edges)
        elif self.learn_bandwidth:
            scales = torch.full((n_filters,), self.bandwidth_scale)
        else:
            return
        log_bandwidth = torch.log(scales).float()
        if self.learn_bandwidth:
            self.log_bandwidth = nn.Parameter(
                log_bandwidth, requires_grad=not self.freeze
            )
        else:
            self.register_buffer("log_bandwidth", log_bandwidth)

    def _bandwidth_scales(self):
        """Shared float scale, or ``[n_filters]`` scales in param order."""
        if not hasattr(self, "log_bandwidth"):
            return self.bandwidth_scale
        return torch.exp(self.log_bandwidth.clamp(*_LOG_BANDWIDTH_RANGE))

    def _unsorted_filters(self):
        nu = _theta_to_nu(self.theta)
        kernels = fb.cos_gauss_kernels(
            nu, self.kernel_size, self._bandwidth_scales()
        )
        return nu, kernels

    def bandwidths_hz(self):
        """Return the filters' spectral FWHM in Hz, sorted like the centres.

        The FWHM of each untruncated Gaussian's amplitude response,
        ``2 sqrt(2 ln 2) * sample_rate / (2 pi sigma)`` with ``sigma =
        scale / nu`` samples (the power response is ``sqrt(2)``
        narrower). Where the Gaussian is longer than
        ``kernel_size`` taps (low centres, wide scales), the truncated
        kernel's real response is wider than reported.

        Returns
        -------
        torch.Tensor
            ``[n_filters]`` FWHM in Hz (detached), in the order of
            :meth:`center_frequencies`.
        """
        with torch.no_grad():
            nu = _theta_to_nu(self.theta)
            fwhm = fb.cos_gauss_fwhm_hz(
                nu, self._bandwidth_scales(), self.sample_rate
            )
            return fwhm[torch.argsort(nu)]

    def extra_repr(self):
        """Summarise the configuration."""
        return (
            f"{super().extra_repr()}, "
            f"bandwidth_scale={self.bandwidth_scale!r}, "
            f"learn_bandwidth={self.learn_bandwidth}"
        )


class SincFilterbank(LearnableFilterbank):
    """Learnable SincNet filterbank on the shared framing/energy engine.

    As in SincNet, each filter has a learnable low cut-off and band width
    in Hz; the band is ``[min_low_hz + |low|, low + min_band_hz + |band|]``
    (clipped to Nyquist) and the kernel a Hamming-windowed band-pass sinc.
    Filters are sorted by band centre. Only the kernel construction differs
    from :class:`CosGaussFilterbank`.

    Arguments
    ---------
    n_filters : int
        Number of filters.
    sample_rate : int
        Sample rate in Hz.
    win_length : int or str, optional
        Frame length in samples or as a duration (default as
        :class:`CosGaussFilterbank`).
    hop_length : int or str, optional
        Hop in samples or as a duration.
    kernel_size : int or str, optional
        Taps per kernel, or a duration.
    f_min : float
        Lowest band edge of the mel-spaced init, in Hz (SincNet: 30).
    f_max : float, optional
        Highest band edge of the init (default Nyquist minus the minimum
        low cut-off and band width).
    min_low_hz : float
        Smallest low cut-off in Hz (lowered to ``f_min`` if that is
        smaller, so that the init is exactly mel-spaced).
    min_band_hz : float
        Smallest band width in Hz (lowered to the narrowest mel band of
        the init if that is smaller).
    **kwargs
        The engine's options, by keyword: ``mode``, ``padding``,
        ``log_eps``, ``freeze``, ``learn_gain`` and ``compression``, as in
        :class:`LearnableFilterbank`. With ``freeze=True`` the bands (and
        gains) are not trained.

    Example
    -------
    >>> fbank = SincFilterbank(n_filters=40, sample_rate=16000,
    ...                        win_length=400, hop_length=160,
    ...                        kernel_size=251)
    >>> fbank(torch.randn(3, 16000)).shape
    torch.Size([3, 101, 40])
    """

    def __init__(
        self,
        n_filters=80,
        sample_rate=44100,
        win_length=None,
        hop_length=None,
        kernel_size=None,
        f_min=30.0,
        f_max=None,
        min_low_hz=50.0,
        min_band_hz=50.0,
        **kwargs,
    ):
        super().__init__(
            n_filters, sample_rate, win_length, hop_length, kernel_size,
            **kwargs,
        )
        nyquist = sample_rate / 2
        if f_max is None:
            f_max = nyquist - (min_low_hz + min_band_hz)
        fb.check_frequency_range(f_min, f_max, nyquist)
        self.register_buffer(
            "_taper", fb.frame_window(self.kernel_size), persistent=False
        )
        edges = fb.mel_to_hz(
            torch.linspace(
                float(fb.hz_to_mel(torch.tensor(float(f_min)))),
                float(fb.hz_to_mel(torch.tensor(float(f_max)))),
                n_filters + 1,
            )
        )
        gaps = torch.diff(edges)
        # The bands are floor + |offset|: a mel edge below min_low_hz or a
        # gap below min_band_hz would need a negative offset, which abs()
        # mirrors (bands out of order, widths 100 - gap). Lower the floors
        # to the init instead, so the initial bands are the mel bands.
        self.min_low_hz = min(float(min_low_hz), float(edges[0]))
        self.min_band_hz = min(float(min_band_hz), float(gaps.min()))
        if (self.min_low_hz, self.min_band_hz) != (min_low_hz, min_band_hz):
            logger.info(
                "SincFilterbank: floors lowered to min_low_hz=%.2f, "
                "min_band_hz=%.2f Hz to fit the mel init (f_min=%g Hz)",
                self.min_low_hz, self.min_band_hz, f_min,
            )
        self.low_hz = nn.Parameter(
            edges[:-1] - self.min_low_hz, requires_grad=not self.freeze
        )
        self.band_hz = nn.Parameter(
            gaps - self.min_band_hz, requires_grad=not self.freeze
        )

    def band_edges(self):
        """Return the unsorted ``(low, high)`` band edges in Hz.

        Returns
        -------
        tuple of torch.Tensor
            Low and high cut-offs, ``[n_filters]`` each.
        """
        nyquist = self.sample_rate / 2
        low = self.min_low_hz + self.low_hz.abs()
        high = torch.clamp(
            low + self.min_band_hz + self.band_hz.abs(),
            self.min_low_hz,
            nyquist,
        )
        return low, high

    def _used_band_edges(self):
        low, high = self.band_edges()
        # A low cut-off pushed past Nyquist would leave an empty band.
        return torch.minimum(low, high - self.min_band_hz), high

    def _unsorted_filters(self):
        nyquist = self.sample_rate / 2
        low, high = self._used_band_edges()
        kernels = fb.sinc_kernels(
            low / nyquist, high / nyquist, self.kernel_size, self._taper
        )
        return (low + high) / (2 * nyquist), kernels

    def bandwidths_hz(self):
        """Return the band widths ``high - low`` in Hz, sorted by centre.

        Returns
        -------
        torch.Tensor
            ``[n_filters]`` widths in Hz (detached), in the order of
            :meth:`center_frequencies`.
        """
        with torch.no_grad():
            low, high = self._used_band_edges()
            return (high - low)[torch.argsort(low + high)]


def _mel_bandwidth_scales(target_hz, actual_hz, low_hz, high_hz):
    """Per-filter scales whose FWHM is the neighbours' half spacing.

    The spacing comes from the intended centres ``target_hz``, the scale
    from the centres the parameters hold, so that :meth:`bandwidths_hz`
    reports exactly the spacing at init. Both in parameter order.
    """
    order = torch.argsort(target_hz)
    spacing = torch.empty_like(target_hz)
    spacing[order] = fb.neighbour_half_spacing(
        target_hz[order], low_hz, high_hz
    )
    if not bool((spacing > 0).all()):
        raise ValueError(
            "bandwidth_scale='mel' needs distinct centre frequencies: the "
            "spacing between neighbours sets each width."
        )
    return fb.cos_gauss_scale_for_fwhm(actual_hz, spacing)


def _theta_to_nu(theta):
    return _NU_MARGIN + (1 - 2 * _NU_MARGIN) * torch.sigmoid(theta)


def _nu_to_theta(nu):
    p = ((nu.double() - _NU_MARGIN) / (1 - 2 * _NU_MARGIN)).clamp(
        1e-12, 1 - 1e-12
    )
    return torch.log(p / (1 - p)).float()


def _init_center_frequencies(init, n_filters, f_min, f_max, nyquist):
    """Resolve an ``init`` argument to ``[n_filters]`` centres in Hz."""
    if isinstance(init, str):
        if f_max is None:
            f_max = nyquist
        fb.check_frequency_range(f_min, f_max, nyquist)
        if init == "mel":
            return fb.mel_center_frequencies(n_filters, f_min, f_max)
        if init == "linear":
            return torch.linspace(f_min, f_max, n_filters + 2)[1:-1]
        raise ValueError(
            "init must be 'mel', 'linear', 'random' or a sequence of "
            f"centre frequencies in Hz, got {init!r}"
        )
    hz = torch.as_tensor(init, dtype=torch.float64).flatten()
    if hz.numel() != n_filters:
        raise ValueError(
            f"init gives {hz.numel()} centre frequencies for "
            f"n_filters={n_filters}"
        )
    if not bool(((hz > 0) & (hz < nyquist)).all()) or not math.isfinite(
        float(hz.sum())
    ):
        raise ValueError(
            "Explicit centre frequencies must lie strictly between 0 and "
            f"Nyquist ({nyquist} Hz), got min {float(hz.min())}, "
            f"max {float(hz.max())}"
        )
    return hz
