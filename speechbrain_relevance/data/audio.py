"""Audio reading with errors that name the file.

Every recipe, data preparation and inference path reads audio through these
functions, so a missing, corrupt, stereo or wrongly sampled file fails the
same clear way everywhere.

Authors
 * speechbrain-relevance developers
"""

import dataclasses
import functools
import os

import soundfile as sf
import torch
import torchaudio


class AudioFileError(RuntimeError):
    """An audio file is missing, unreadable or not in the expected format.

    Arguments
    ---------
    path : str
        The offending file.
    reason : str
        What is wrong with it.
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclasses.dataclass
class AudioInfo:
    """Header facts of an audio file.

    Arguments
    ---------
    sample_rate : int
        Samples per second.
    channels : int
        Number of channels.
    frames : int
        Samples per channel.
    subtype : str
        Sample format, e.g. ``"PCM_24"``.
    """

    sample_rate: int
    channels: int
    frames: int
    subtype: str

    @property
    def duration(self):
        """Duration in seconds."""
        return self.frames / self.sample_rate


def audio_info(path):
    """Read the header of an audio file.

    Arguments
    ---------
    path : str
        Audio file.

    Returns
    -------
    AudioInfo
        Sample rate, channels, frames and sample format.

    Raises
    ------
    AudioFileError
        If the file is missing, unreadable or empty.

    Example
    -------
    >>> import tempfile, soundfile
    >>> path = tempfile.mkstemp(suffix=".wav")[1]
    >>> soundfile.write(path, torch.zeros(800).numpy(), 8000)
    >>> audio_info(path).duration
    0.1
    >>> audio_info(path + ".missing")
    Traceback (most recent call last):
    ...
    speechbrain_relevance.data.audio.AudioFileError: ...: file not found
    """
    if not os.path.isfile(path):
        raise AudioFileError(path, "file not found")
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises several types
        raise AudioFileError(path, f"unreadable audio ({e})") from e
    if info.frames <= 0:
        raise AudioFileError(path, "file holds no samples")
    return AudioInfo(
        int(info.samplerate),
        int(info.channels),
        int(info.frames),
        str(info.subtype),
    )


def load_audio(path, sample_rate=None, mono=True, strict=False):
    """Read an audio file as a float32 tensor, optionally converting it.

    Arguments
    ---------
    path : str
        Audio file.
    sample_rate : int, optional
        Rate to return. Files at another rate are resampled
        (``torchaudio.functional.resample``), or rejected if ``strict``.
    mono : bool
        Downmix to one channel by averaging (or reject multi-channel files
        if ``strict``).
    strict : bool
        Reject, instead of converting, files whose rate or channel count
        differ from what is asked.

    Returns
    -------
    torch.Tensor
        ``[time]`` if ``mono``, else ``[channels, time]``.

    Raises
    ------
    AudioFileError
        If the file is missing, unreadable, empty, or (``strict``) not in
        the expected format.

    Example
    -------
    >>> import tempfile, soundfile
    >>> path = tempfile.mkstemp(suffix=".wav")[1]
    >>> soundfile.write(path, torch.rand(800, 2).numpy(), 8000)
    >>> load_audio(path, sample_rate=16000).shape
    torch.Size([1600])
    >>> load_audio(path, sample_rate=16000, strict=True)
    Traceback (most recent call last):
    ...
    speechbrain_relevance.data.audio.AudioFileError: ...: sample rate 8000 Hz...
    """
    info = audio_info(path)
    if strict and sample_rate is not None and info.sample_rate != sample_rate:
        raise AudioFileError(
            path,
            f"sample rate {info.sample_rate} Hz, expected {sample_rate} Hz",
        )
    if strict and mono and info.channels != 1:
        raise AudioFileError(path, f"{info.channels} channels, expected mono")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioFileError(path, f"unreadable audio ({e})") from e
    wav = torch.from_numpy(data.T.copy())
    if not torch.isfinite(wav).all():
        raise AudioFileError(path, "audio holds NaN or infinite samples")
    if mono:
        wav = wav.mean(dim=0)
    if sample_rate is not None and sr != sample_rate:
        wav = _resampler(sr, sample_rate)(wav)
    return wav


@functools.lru_cache(maxsize=16)
def _resampler(orig_freq, new_freq):
    """Return a cached resampler (building its kernel costs more than using it).

    Datasets such as UrbanSound8k mix a handful of rates, so a few cached
    kernels serve every file.
    """
    return torchaudio.transforms.Resample(orig_freq, new_freq)


def fit_length(wav, n_samples, mode="pad"):
    """Zero-pad or crop the last axis of ``wav`` to ``n_samples``.

    Arguments
    ---------
    wav : torch.Tensor
        ``[..., time]`` audio.
    n_samples : int
        Target length.
    mode : str
        ``"pad"`` (zeros at the end, crop from the start) or ``"tile"``
        (repeat the clip, then crop).

    Returns
    -------
    torch.Tensor
        ``[..., n_samples]`` audio.

    Example
    -------
    >>> fit_length(torch.ones(3), 5)
    tensor([1., 1., 1., 0., 0.])
    >>> fit_length(torch.arange(3.0), 7, mode="tile")
    tensor([0., 1., 2., 0., 1., 2., 0.])
    """
    length = wav.shape[-1]
    if length >= n_samples:
        return wav[..., :n_samples]
    if mode == "pad":
        return torch.nn.functional.pad(wav, (0, n_samples - length))
    if mode == "tile":
        reps = -(-n_samples // length)
        return wav.repeat(*([1] * (wav.dim() - 1)), reps)[..., :n_samples]
    raise ValueError(f"mode must be 'pad' or 'tile', got {mode!r}")


def peak_normalize(wav, eps=1e-4):
    """Scale a clip by its peak, ``x / (max|x| + eps)``, as the reference.

    Arguments
    ---------
    wav : torch.Tensor
        ``[..., time]`` audio.
    eps : float
        Keeps silence finite.

    Returns
    -------
    torch.Tensor
        Normalised audio.

    Example
    -------
    >>> peak_normalize(torch.tensor([0.0, -0.5, 0.25]), eps=0.0)
    tensor([ 0.0000, -1.0000,  0.5000])
    """
    return wav / (wav.abs().amax(dim=-1, keepdim=True) + eps)
