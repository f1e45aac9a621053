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

from speechbrain_relevance.errors import AudioFileError, ConfigError


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
    speechbrain_relevance.errors.AudioFileError: ...: file not found
    """
    if os.path.isdir(path):
        raise AudioFileError(path, "is a directory, not an audio file")
    if not os.path.isfile(path):
        raise AudioFileError(path, "file not found")
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises several types
        raise AudioFileError(path, f"unreadable audio ({e})") from e
    if info.frames <= 0:
        raise AudioFileError(path, "file holds no samples")
    declared = declared_wav_frames(path)
    if declared is not None and declared > info.frames:
        # libsndfile quietly reads what is there: a copy cut short would
        # otherwise pass as a shorter clip.
        raise AudioFileError(
            path,
            f"truncated: the header declares {declared} samples per "
            f"channel, the file holds {info.frames}",
        )
    return AudioInfo(
        int(info.samplerate),
        int(info.channels),
        int(info.frames),
        str(info.subtype),
    )


def declared_wav_frames(path):
    """Return the samples per channel a WAV file's ``data`` chunk declares.

    Arguments
    ---------
    path : str
        Audio file.

    Returns
    -------
    int or None
        The declared count, or None for other formats, streamed WAVs whose
        header leaves the size open, and headers that cannot be parsed.

    Example
    -------
    >>> import tempfile, soundfile
    >>> path = tempfile.mkstemp(suffix=".wav")[1]
    >>> soundfile.write(path, torch.zeros(800).numpy(), 8000)
    >>> declared_wav_frames(path)
    800
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                size = int.from_bytes(chunk[4:], "little")
                if chunk[:4] == b"fmt ":
                    fmt = f.read(size + (size & 1))
                    block_align = int.from_bytes(fmt[12:14], "little")
                elif chunk[:4] == b"data":
                    # 0 and 0xFFFFFFFF: size left open by a streaming writer
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    f.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None


def clip_length_problem(info, min_duration, expected_duration=None,
                        short_fraction=0.5):
    """Judge a clip's duration: too short to use, or suspiciously short.

    Arguments
    ---------
    info : AudioInfo
        The clip's header facts.
    min_duration : float
        Seconds below which the clip is unusable (e.g. one analysis frame).
    expected_duration : float, optional
        The dataset's (or this clip's annotated) duration in seconds.
    short_fraction : float
        Clips shorter than this fraction of ``expected_duration`` are
        suspicious (a cut copy, a failed export).

    Returns
    -------
    tuple of (str or None, str or None)
        Why the clip must be rejected, and what to warn about.

    Example
    -------
    >>> info = AudioInfo(44100, 1, 10, "PCM_16")
    >>> clip_length_problem(info, min_duration=0.025)[0]
    '10 samples (0.0002 s), shorter than one 0.025 s analysis frame'
    >>> info = AudioInfo(44100, 1, 44100, "PCM_16")
    >>> clip_length_problem(info, 0.025, expected_duration=10.0)[1]
    '1.000 s long, expected 10.000 s'
    """
    if info.duration < min_duration:
        return (
            f"{info.frames} samples ({info.duration:.4f} s), shorter than "
            f"one {min_duration:g} s analysis frame",
            None,
        )
    if expected_duration and info.duration < short_fraction * float(
        expected_duration
    ):
        return None, (
            f"{info.duration:.3f} s long, expected "
            f"{float(expected_duration):.3f} s"
        )
    return None, None


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
    speechbrain_relevance.errors.AudioFileError: ...: sample rate 8000 Hz...
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


class ClipCache:
    """Keep prepared clips in memory, up to a size, for later epochs.

    Decoding and checking a short clip costs more than training on it
    (FSDD: about a millisecond per clip, read every epoch), while a small
    dataset's prepared clips fit in memory many times over. The first
    ``load(path)`` of a file is kept (a copy is returned each time, so
    nothing downstream can change what is kept) until ``max_megabytes``
    are held; files beyond that are loaded every time. ``load`` must be
    deterministic (random cropping belongs to augmentation, not here):
    a cached run gives exactly the results of an uncached one.

    With ``num_workers > 0`` each loader worker holds its own cache, kept
    across epochs only with ``persistent_workers=True``.

    Arguments
    ---------
    load : callable
        ``load(path) -> torch.Tensor``, e.g. ``ClipPolicy(...).load``.
    max_megabytes : float
        Memory for clips (MiB); 0 caches nothing.

    Example
    -------
    >>> calls = []
    >>> def load(path):
    ...     calls.append(path)
    ...     return torch.zeros(4000)  # 16 kB
    >>> cache = ClipCache(load, max_megabytes=0.02)
    >>> [cache(p).shape[0] for p in ["a.wav", "a.wav", "b.wav", "b.wav"]]
    [4000, 4000, 4000, 4000]
    >>> calls  # b.wav did not fit in 0.02 MiB beside a.wav
    ['a.wav', 'b.wav', 'b.wav']
    >>> len(cache), round(cache.megabytes, 3)
    (1, 0.015)
    """

    def __init__(self, load, max_megabytes):
        number = isinstance(max_megabytes, (int, float)) and not isinstance(
            max_megabytes, bool
        )
        if not number or max_megabytes < 0:
            raise ConfigError(
                "{max_megabytes} must be a number of MiB >= 0, got "
                f"{max_megabytes!r}",
                keys=["max_megabytes"],
            )
        self.load = load
        self.max_bytes = int(max_megabytes * 2**20)
        self.clips = {}
        self.bytes = 0

    def __call__(self, path):
        """Return the prepared clip of ``path`` (a copy of the kept one)."""
        clip = self.clips.get(path)
        if clip is None:
            clip = self.load(path)
            size = clip.numel() * clip.element_size()
            if self.bytes + size > self.max_bytes:
                return clip
            self.clips[path] = clip
            self.bytes += size
        return clip.clone()

    def __len__(self):
        return len(self.clips)

    @property
    def megabytes(self):
        """Memory held by the kept clips (MiB)."""
        return self.bytes / 2**20
