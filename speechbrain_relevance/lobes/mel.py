"""Fixed log-mel front-end framed like the learnable filterbanks.

Authors
 * speechbrain-relevance developers
"""

import math

import torch
import torch.nn as nn
import torchaudio

from speechbrain_relevance.lobes import functional as fb
from speechbrain_relevance.lobes.filterbanks import length_in_samples


class MelFilterbank(nn.Module):
    """Log-mel energies with the framing of the learnable filterbanks.

    A baseline for :class:`~speechbrain_relevance.lobes.CosGaussFilterbank`
    and :class:`~speechbrain_relevance.lobes.SincFilterbank`: the same
    ``forward(wavs, wav_lens=None)``, the same frames and
    ``[batch, frames, n_mels]`` output, but fixed triangular HTK-mel
    filters (``torchaudio.transforms.MelSpectrogram``, power 2, no filter
    normalisation) on the power spectrum.

    Framing. Frame ``t`` holds exactly the samples of the learnable banks'
    frame ``t`` (reflect padding, centred on sample ``t * hop_length``)
    times the same symmetric Hamming window of ``win_length`` samples
    (:func:`~speechbrain_relevance.lobes.functional.frame_window`). To get
    this for any ``win_length`` and ``n_fft``, the window is zero-padded to
    ``n_fft`` samples (``n_fft // 2 - win_length // 2`` zeros in front) and
    the STFT runs with ``win_length=n_fft``, ``center=True``, reflect
    padding; so ``frames = 1 + time // hop_length``, as the learnable
    banks. The STFT's reflect padding needs ``time > n_fft // 2`` samples
    (the learnable banks need ``time > win_length // 2``).

    Scale. The mel energies are divided by ``win_length``, a fixed
    convention that puts them on a per-sample scale comparable to the
    learnable banks' energies (which are means over the valid
    convolution outputs), so that ``log_eps`` plays a similar role. Then
    ``log(energy + log_eps)``, or ``compression(energy)`` if a compression
    module is given: the learnable banks' tail
    (:func:`~speechbrain_relevance.lobes.functional.compress_band_energy`).
    Computed in float32 even under autocast.

    Arguments
    ---------
    n_mels : int
        Number of mel bands.
    sample_rate : int
        Sample rate in Hz.
    win_length : int or str
        Frame length in samples or as a duration (``"25ms"``).
    hop_length : int or str
        Hop in samples or as a duration.
    n_fft : int, optional
        Even FFT size, at least ``win_length``; default the next power of
        two.
    f_min : float
        Lowest mel edge in Hz.
    f_max : float, optional
        Highest mel edge in Hz (default Nyquist).
    log_eps : float
        Added to the energies before the log.
    compression : torch.nn.Module, optional
        Applied to the ``[batch, frames, n_mels]`` energies instead of the
        log, e.g. :class:`~speechbrain_relevance.lobes.PCEN`.

    Example
    -------
    >>> mel = MelFilterbank(n_mels=40, sample_rate=8000, win_length=200,
    ...                     hop_length=80)
    >>> feats = mel(torch.randn(2, 8000))
    >>> feats.shape, feats.dtype, mel.n_fft
    (torch.Size([2, 101, 40]), torch.float32, 256)
    >>> list(mel.parameters())
    []
    """

    def __init__(
        self,
        n_mels=40,
        sample_rate=8000,
        win_length=200,
        hop_length=80,
        n_fft=None,
        f_min=0.0,
        f_max=None,
        log_eps=1e-3,
        compression=None,
    ):
        super().__init__()
        fb.check_positive_int("n_mels", n_mels)
        fb.check_positive_int("sample_rate", sample_rate)
        win_length = length_in_samples("win_length", win_length, sample_rate)
        hop_length = length_in_samples("hop_length", hop_length, sample_rate)
        if n_fft is None:
            n_fft = 2 ** math.ceil(math.log2(max(win_length, 2)))
        fb.check_positive_int("n_fft", n_fft)
        if n_fft < win_length or n_fft % 2:
            raise ValueError(
                f"n_fft must be even and at least win_length={win_length}, "
                f"got {n_fft}"
            )
        nyquist = sample_rate / 2
        if f_max is None:
            f_max = nyquist
        fb.check_frequency_range(f_min, f_max, nyquist)
        fb.check_compression(log_eps, compression)
        self.n_mels = n_mels
        # Same attribute as the learnable banks, for RelevanceFrontEnd.
        self.n_filters = n_mels
        self.sample_rate = sample_rate
        self.win_length = win_length
        self.hop_length = hop_length
        self.n_fft = n_fft
        self.log_eps = log_eps
        self.spectrogram = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=n_fft,
            hop_length=hop_length,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            window_fn=_padded_frame_window,
            wkwargs={"win_length": win_length},
            power=2.0,
            center=True,
            pad_mode="reflect",
            norm=None,
            mel_scale="htk",
        )
        self.compression = compression

    def forward(self, wavs, wav_lens=None):
        """Compute log-mel (or ``compression``-ed mel) energies.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` waveforms (``[batch, time, 1]`` is accepted).
        wav_lens : torch.Tensor, optional
            Relative lengths in [0, 1], checked only: they carry over to
            the frame axis unchanged.

        Returns
        -------
        torch.Tensor
            ``[batch, frames, n_mels]`` features in float32, with
            ``frames = 1 + time // hop_length``.
        """
        wavs = fb.check_waveforms(type(self).__name__, wavs, wav_lens)
        if wavs.shape[-1] <= self.n_fft // 2:
            raise ValueError(
                f"Waveform of {wavs.shape[-1]} samples is too short: the "
                f"STFT needs more than n_fft // 2 = {self.n_fft // 2} "
                "samples (reflect padding). Pad short clips first."
            )
        with torch.autocast(device_type=wavs.device.type, enabled=False):
            power = self.spectrogram(wavs.float())
            return fb.compress_band_energy(
                power.transpose(1, 2),
                self.win_length,
                self.log_eps,
                self.compression,
            )

    def extra_repr(self):
        """Summarise the configuration."""
        return (
            f"n_mels={self.n_mels}, sample_rate={self.sample_rate}, "
            f"win_length={self.win_length}, hop_length={self.hop_length}, "
            f"n_fft={self.n_fft}"
        )


def _padded_frame_window(n_fft, win_length):
    """Zero-pad the frame window to ``n_fft`` to match the engine frames.

    With ``center=True`` frame ``t`` starts ``n_fft // 2`` samples before
    sample ``t * hop``; the learnable banks' frame starts ``win_length //
    2`` before it, so the window starts ``n_fft // 2 - win_length // 2``
    samples into the FFT frame.
    """
    window = torch.zeros(n_fft)
    start = n_fft // 2 - win_length // 2
    window[start : start + win_length] = fb.frame_window(win_length)
    return window
