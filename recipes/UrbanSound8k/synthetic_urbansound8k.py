"""A synthetic UrbanSound8K in the exact official layout.

No dataset can be downloaded where the tests and the recipe smoke runs
happen, so this module writes a small stand-in that exercises every path
the real corpus exercises::

    <root>/UrbanSound8K/audio/fold1 ... fold10/<fsID>-<class>-<occ>-<slice>.wav
    <root>/UrbanSound8K/metadata/UrbanSound8K.csv

(``<class>`` is the numeric classID.)

The csv is comma-separated with the official header
``slice_file_name,fsID,start,end,salience,fold,classID,class``. As in the
real corpus, clips last up to ``max_duration`` seconds (many shorter),
sample rates range from 8 to 96 kHz, files are mono or stereo with 8, 16,
24 or 32-bit samples (integer or float), slices cut from one source
recording (one ``fsID``) share its format and lie in one fold, and each
slice is foreground (salience 1) or background (salience 2).

The ten classes are event-like sounds with distinct spectro-temporal
shapes, so that a classifier can actually learn them: stationary hum and
broadband noise (air conditioner), harmonic horn blasts, babble-like
bursts, short formant-filtered barks, high-pitched periodic drilling, low
engine harmonics, impulsive gunshots with decay, periodic broadband
jackhammer hits, siren sweeps, and rhythmic musical notes and chords. Each
recording draws its own parameters (pitch, rate, spectral colour) and each
slice adds its own timing, background noise and level.

Everything is deterministic given ``seed``: every slice is synthesised from
random generators seeded by ``(seed, fsID, ...)``, so a clip does not depend
on the order in which clips are generated.

Authors
 * speechbrain-relevance developers
"""

import csv
import os
import shutil
import sys

import numpy as np
import soundfile as sf

from speechbrain_relevance.cli import ArgumentParser

# Recipe modules import their siblings by name, as train.py does.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare_urbansound8k import (  # noqa: E402
    URBANSOUND_CLASSES,
    URBANSOUND_CSV_COLUMNS,
    URBANSOUND_N_FOLDS,
)

#: Sample rates drawn for the source recordings (the real set spans these).
SAMPLE_RATES = (8000, 11025, 16000, 22050, 44100, 48000, 96000)

#: soundfile WAV subtypes drawn for the source recordings (8 to 32 bit).
SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT")

CLASSES = URBANSOUND_CLASSES
CSV_HEADER = URBANSOUND_CSV_COLUMNS
N_FOLDS = URBANSOUND_N_FOLDS


# ---------------------------------------------------------------------------
# Signal building blocks (all vectorised over time)
# ---------------------------------------------------------------------------


def _next_pow2(n):
    """Smallest power of two >= ``n`` (fast FFT size for any clip length)."""
    return 1 << max(int(n) - 1, 1).bit_length()


def _shaped_noise(rng, n, sr, exponent=0.0, lo=None, hi=None):
    """White noise coloured by ``f**(-exponent/2)`` and an optional band.

    Returns unit-RMS noise of ``n`` samples. The FFT is circular, which is
    harmless for noise and much cheaper than an IIR filter in Python.
    """
    nfft = _next_pow2(n)
    spec = np.fft.rfft(rng.standard_normal(nfft))
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    gain = np.ones_like(freqs)
    if exponent:
        gain = np.maximum(freqs, 20.0) ** (-exponent / 2.0)
    # Smooth (raised-cosine-like) band edges avoid ringing.
    if lo is not None:
        gain = gain / (1.0 + (lo / np.maximum(freqs, 1.0)) ** 4)
    if hi is not None:
        gain = gain / (1.0 + (freqs / hi) ** 4)
    out = np.fft.irfft(spec * gain, nfft)[:n]
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


def _formants(x, sr, centres, widths, floor=0.05):
    """Filter ``x`` with a sum of Gaussian resonances (vowel-like colour)."""
    n = len(x)
    nfft = _next_pow2(n)
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    gain = np.full_like(freqs, floor)
    for c, w in zip(centres, widths):
        gain += np.exp(-0.5 * ((freqs - c) / w) ** 2)
    return np.fft.irfft(np.fft.rfft(x, nfft) * gain, nfft)[:n]


def _harmonic(f0, sr, amps, phase0=0.0):
    """Sum of harmonics of an instantaneous pitch track ``f0`` [Hz].

    Harmonics above 0.45 ``sr`` are dropped sample by sample, so an 8 kHz
    file holds no aliased partials. ``sin(k x)`` comes from the Chebyshev
    recurrence ``sin(k x) = 2 cos(x) sin((k-1) x) - sin((k-2) x)``: one
    multiply-add per harmonic instead of a transcendental call.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    phase = 2.0 * np.pi * np.cumsum(f0) / sr + phase0
    two_cos = 2.0 * np.cos(phase)
    prev, cur = np.zeros_like(phase), np.sin(phase)
    out = np.zeros_like(phase)
    limit, f_lo, f_hi = 0.45 * sr, f0.min(), f0.max()
    for k, a in enumerate(amps, start=1):
        if k * f_lo >= limit:
            break
        # The mask is only needed while the track straddles the limit.
        out += a * cur if k * f_hi < limit else a * cur * (k * f0 < limit)
        prev, cur = cur, two_cos * cur - prev
    return out


def _since_last(t, onsets):
    """Time since the latest onset at or before each ``t`` (inf before any).

    Returns the elapsed time and the index of that onset, which lets
    periodic events (hits, notes, barks) be rendered without a Python loop
    over events.
    """
    onsets = np.sort(np.asarray(onsets, dtype=np.float64))
    if len(onsets) == 0:
        return np.full(len(t), np.inf), np.full(len(t), -1)
    idx = np.searchsorted(onsets, t, side="right") - 1
    dt = np.where(idx >= 0, t - onsets[np.maximum(idx, 0)], np.inf)
    return dt, idx


def _gates(t, onsets, durations, attack=0.01, release=0.03):
    """Trapezoid envelope: 1 inside ``[onset, onset + duration]``."""
    on = np.asarray(onsets)[:, None]
    off = on + np.asarray(durations)[:, None]
    rise = np.clip((t[None] - on) / attack, 0.0, 1.0)
    fall = np.clip((off - t[None]) / release, 0.0, 1.0)
    return (rise * fall).max(axis=0)


def _smooth_walk(rng, n, sr, rate=2.0):
    """Slow random fluctuation in [-1, 1], varying at about ``rate`` Hz.

    Drawn at a control rate of ``8 rate`` and linearly interpolated: far
    cheaper than filtering audio-rate noise for a contour this slow.
    """
    step = 1.0 / (8.0 * rate)
    m = int(n / sr / step) + 4
    knots = np.convolve(rng.standard_normal(m + 8), np.hanning(9), "valid")
    x = np.interp(np.arange(n) / sr, np.arange(m) * step, knots)
    return x / (np.abs(x).max() + 1e-12)


def _event_times(rng, dur, count, length):
    """``count`` onsets such that events of ``length`` s fit in the clip."""
    latest = max(dur - length, 1e-3)
    return np.sort(rng.uniform(0.0, latest, size=count))


# ---------------------------------------------------------------------------
# The ten classes. ``p`` draws per-recording parameters (identical for all
# slices of one fsID), ``r`` draws per-slice randomness.
# ---------------------------------------------------------------------------


def _air_conditioner(p, r, t, sr):
    f0 = p.uniform(45.0, 120.0)
    hum = _harmonic(np.full(len(t), f0), sr, 0.6 ** np.arange(6))
    noise = _shaped_noise(
        r, len(t), sr, exponent=p.uniform(0.5, 1.5), hi=p.uniform(800, 3000)
    )
    # A slow, shallow swell: fans and compressors are nearly stationary.
    swell = 1.0 + 0.1 * np.sin(2 * np.pi * r.uniform(0.1, 1.0) * t)
    return swell * (p.uniform(0.2, 0.6) * hum / 3.0 + noise)


def _car_horn(p, r, t, sr):
    f0 = p.uniform(330.0, 480.0)
    ratio = p.uniform(1.18, 1.3)  # dual-tone horns sit near a minor third
    amps = 0.75 ** np.arange(10)
    tone = _harmonic(np.full(len(t), f0), sr, amps) + _harmonic(
        np.full(len(t), f0 * ratio), sr, amps
    )
    dur = t[-1] + 1.0 / sr
    count = int(r.integers(1, 4))
    lengths = r.uniform(0.15, 0.9, size=count)
    env = _gates(t, _event_times(r, dur, count, lengths.max()), lengths)
    return env * tone


def _children_playing(p, r, t, sr):
    n, out = len(t), np.zeros(len(t))
    for _ in range(int(r.integers(3, 7))):
        base = r.uniform(220.0, 420.0)
        # Lively intonation: vibrato plus a slow random pitch contour.
        f0 = base * (
            1.0
            + 0.08 * np.sin(2 * np.pi * r.uniform(4, 7) * t + r.uniform(0, 6))
            + 0.15 * _smooth_walk(r, n, sr, rate=3.0)
        )
        voice = _harmonic(f0, sr, 0.65 ** np.arange(8), r.uniform(0, 6))
        # Syllables: a squared sinusoid at 3-6 Hz, randomly silenced.
        syl = np.sin(np.pi * r.uniform(3.0, 6.0) * t + r.uniform(0, 6)) ** 2
        active = _smooth_walk(r, n, sr, rate=1.0) > r.uniform(-0.6, 0.2)
        out += voice * syl * active
    out = _formants(out, sr, p.uniform([600, 1500], [1000, 2800]), [150, 300])
    return out + 0.2 * np.std(out) * _shaped_noise(r, n, sr, exponent=1.0)


def _dog_bark(p, r, t, sr):
    f0 = p.uniform(350.0, 900.0)
    dur = t[-1] + 1.0 / sr
    count = int(r.integers(1, 6))
    length = p.uniform(0.08, 0.3)
    onsets = _event_times(r, dur, count, length)
    dt, _ = _since_last(t, onsets)
    inside = dt < length
    frac = np.where(inside, dt / length, 1.0)
    # Each bark starts high and falls, with a fast attack and a decay.
    pitch = f0 * (1.15 - 0.45 * frac)
    env = inside * np.minimum(dt / 0.005, 1.0) * np.exp(-3.0 * frac)
    voiced = _harmonic(pitch, sr, 0.7 ** np.arange(8))
    rough = 0.4 * _shaped_noise(r, len(t), sr, lo=300.0, hi=4000.0)
    bark = _formants(
        env * (voiced + rough),
        sr,
        p.uniform([700, 1800], [1300, 3000]),
        [200, 400],
    )
    return bark


def _drilling(p, r, t, sr):
    n = len(t)
    f0 = p.uniform(800.0, 3000.0) * (1 + 0.02 * _smooth_walk(r, n, sr))
    whine = _harmonic(f0, sr, 1.0 / np.arange(1, 7))
    hiss = _shaped_noise(r, n, sr, lo=0.6 * f0.mean(), hi=1.6 * f0.mean())
    # Rotation of the bit modulates the whine at tens of hertz.
    rot = 1.0 + 0.4 * np.sin(2 * np.pi * p.uniform(20.0, 60.0) * t)
    dur = t[-1] + 1.0 / sr
    count = int(r.integers(1, 3))
    lengths = r.uniform(0.5 * dur, dur, size=count)
    env = _gates(t, _event_times(r, dur, count, lengths.min()), lengths,
                 attack=0.05, release=0.1)
    return env * rot * (whine + 0.3 * hiss)


def _engine_idling(p, r, t, sr):
    n = len(t)
    f0 = p.uniform(20.0, 50.0) * (1 + 0.03 * _smooth_walk(r, n, sr, 4.0))
    amps = np.exp(-np.arange(24) / p.uniform(4.0, 10.0))
    rumble = _harmonic(f0, sr, amps, r.uniform(0, 6))
    noise = _shaped_noise(r, n, sr, exponent=2.0, hi=600.0)
    return rumble / np.std(rumble) + 0.3 * noise


def _gun_shot(p, r, t, sr):
    n = len(t)
    dur = t[-1] + 1.0 / sr
    onsets = _event_times(r, dur, int(r.integers(1, 4)), 0.3)
    dt, _ = _since_last(t, onsets)
    tau = p.uniform(0.015, 0.06)
    crack = np.exp(-dt / tau) * _shaped_noise(r, n, sr, exponent=0.3)
    boom_f = p.uniform(50.0, 120.0)
    boom = np.exp(-dt / (3 * tau)) * np.sin(2 * np.pi * boom_f * np.minimum(
        dt, 10.0))
    # Reverberant tail: low-passed noise that dies away much more slowly.
    tail = 0.25 * np.exp(-dt / p.uniform(0.15, 0.5)) * _shaped_noise(
        r, n, sr, exponent=1.0, hi=2000.0
    )
    return crack + 0.8 * boom + tail


def _jackhammer(p, r, t, sr):
    n = len(t)
    dur = t[-1] + 1.0 / sr
    period = 1.0 / p.uniform(10.0, 25.0)
    onsets = np.arange(r.uniform(0, period), dur, period)
    onsets = onsets + r.normal(0.0, 0.03 * period, size=len(onsets))
    dt, _ = _since_last(t, onsets)
    hits = np.exp(-dt / p.uniform(0.005, 0.015))
    body = _shaped_noise(r, n, sr, exponent=0.5, lo=150.0, hi=6000.0)
    # Operators pause between bursts of hammering.
    count = int(r.integers(1, 3))
    lengths = r.uniform(0.4 * dur, dur, size=count)
    env = _gates(t, _event_times(r, dur, count, lengths.min()), lengths,
                 attack=0.02, release=0.05)
    return env * hits * body


def _siren(p, r, t, sr):
    fc = p.uniform(650.0, 1200.0)
    dev = p.uniform(0.2, 0.45) * fc
    mode = int(p.integers(0, 3))
    phase = r.uniform(0, 2 * np.pi)
    if mode == 0:  # wail: slow sinusoidal sweep
        sweep = np.sin(2 * np.pi * p.uniform(0.15, 0.5) * t + phase)
    elif mode == 1:  # yelp: fast saw-tooth sweep
        rate = p.uniform(2.0, 5.0)
        sweep = 2.0 * ((rate * t + phase / (2 * np.pi)) % 1.0) - 1.0
    else:  # hi-lo: two alternating tones
        sweep = np.sign(np.sin(2 * np.pi * p.uniform(0.8, 2.0) * t + phase))
    return _harmonic(fc + dev * sweep, sr, 0.5 ** np.arange(5))


def _street_music(p, r, t, sr):
    n = len(t)
    dur = t[-1] + 1.0 / sr
    beat = 60.0 / p.uniform(80.0, 160.0)
    step = beat / int(p.integers(1, 3))  # quarter or eighth notes
    onsets = np.arange(r.uniform(0, step), dur, step)
    if len(onsets) == 0:
        onsets = np.zeros(1)
    dt, idx = _since_last(t, onsets)
    idx = np.maximum(idx, 0)
    # Notes and chords from a major pentatonic scale on a per-recording key.
    root = 110.0 * 2.0 ** (p.integers(0, 24) / 12.0)
    scale = np.array([0, 2, 4, 7, 9, 12, 14, 16])
    degrees = r.integers(0, len(scale), size=len(onsets))
    decay = np.exp(-dt / p.uniform(0.15, 0.5))
    out = np.zeros(n)
    for voice in range(int(p.integers(1, 4))):
        semis = scale[(degrees + 2 * voice) % len(scale)]
        f0 = root * 2.0 ** (semis[idx] / 12.0)
        out += _harmonic(f0, sr, 0.6 ** np.arange(6))
    kick_dt, _ = _since_last(t, np.arange(onsets[0], dur, beat))
    kick = np.exp(-kick_dt / 0.08) * np.sin(
        2 * np.pi * 55.0 * np.minimum(kick_dt, 10.0) * (1 + np.exp(
            -kick_dt / 0.02))
    )
    return decay * out + p.uniform(0.0, 1.0) * kick


_SYNTHS = (
    _air_conditioner, _car_horn, _children_playing, _dog_bark, _drilling,
    _engine_idling, _gun_shot, _jackhammer, _siren, _street_music,
)


def synthesize_clip(class_id, duration, sample_rate, seed=0, fs_id=0,
                    slice_id=0, salience=1, channels=1):
    """Synthesise one clip of a class.

    Arguments
    ---------
    class_id : int
        Official UrbanSound8K classID (0-9), see :data:`CLASSES`.
    duration : float
        Length in seconds.
    sample_rate : int
        Samples per second.
    seed : int
        Global seed.
    fs_id : int
        Source recording: slices with the same ``fs_id`` share the
        recording's parameters (pitch, rates, colour).
    slice_id : int
        Distinguishes the slices of one recording.
    salience : int
        1 (foreground, high SNR) or 2 (background, low SNR).
    channels : int
        1 or 2; the second channel is a delayed, rescaled copy of the event
        with its own background noise.

    Returns
    -------
    numpy.ndarray
        ``[time, channels]`` float64 samples with peak below 1.

    Example
    -------
    >>> x = synthesize_clip(8, 0.5, 8000, channels=2)
    >>> x.shape
    (4000, 2)
    >>> bool(abs(x).max() < 1.0)
    True
    """
    if not 0 <= class_id < len(CLASSES):
        raise ValueError(f"class_id must be in 0..9, got {class_id}")
    n = max(int(round(duration * sample_rate)), 1)
    t = np.arange(n) / sample_rate
    p = np.random.default_rng([seed, fs_id, 0])
    r = np.random.default_rng([seed, fs_id, 1, slice_id])
    event = _SYNTHS[class_id](p, r, t, sample_rate)
    event = event / (np.abs(event).max() + 1e-12)
    # Foreground events stand 10-25 dB above the street, background ones
    # only 0-8 dB (RMS of the background against the event's peak).
    snr = r.uniform(10, 25) if salience == 1 else r.uniform(0, 8)
    bg_level = 0.5 * 10.0 ** (-snr / 20.0)
    bg_colour = p.uniform(0.5, 2.0)
    chans = []
    for c in range(channels):
        ev = event
        if c:
            ev = r.uniform(0.6, 1.0) * np.roll(event, int(r.integers(1, 30)))
        bg = _shaped_noise(r, n, sample_rate, exponent=bg_colour, lo=30.0)
        chans.append(ev + bg_level * bg)
    x = np.stack(chans, axis=1)
    # Recording level varies; stay clear of full scale so 8-bit and integer
    # subtypes never clip.
    return x * (r.uniform(0.2, 0.95) / (np.abs(x).max() + 1e-12))


def _balanced(rng, n, options):
    """``n`` draws from ``options`` covering every option when ``n`` allows.

    Tiling then shuffling guarantees that even a tiny synthetic set holds
    every sample rate, channel count and bit depth.
    """
    return [options[i] for i in rng.permutation(np.arange(n) % len(options))]


def _plan(clips_per_class_per_fold, seed, max_duration, min_duration):
    """Decide the file list: recordings, occurrences, slices and formats."""
    rng = np.random.default_rng(seed)
    used_ids, recordings = set(), []
    for fold in range(1, N_FOLDS + 1):
        for class_id in range(len(CLASSES)):
            remaining = clips_per_class_per_fold
            while remaining > 0:
                fs_id = int(rng.integers(1000, 210000))
                while fs_id in used_ids:
                    fs_id = int(rng.integers(1000, 210000))
                used_ids.add(fs_id)
                count = min(remaining, int(rng.integers(1, 4)))
                remaining -= count
                recordings.append(
                    {"fsID": fs_id, "fold": fold, "classID": class_id,
                     "count": count}
                )
    n_rec = len(recordings)
    rates = _balanced(rng, n_rec, SAMPLE_RATES)
    chans = _balanced(rng, n_rec, (1, 2))
    subtypes = _balanced(rng, n_rec, SUBTYPES)
    rows = []
    for rec, sr, ch, st in zip(recordings, rates, chans, subtypes):
        occurrence, slice_id = 0, 0
        start = round(float(rng.uniform(0.0, 120.0)), 6)
        salience = int(rng.integers(1, 3))
        for k in range(rec["count"]):
            if k and rng.random() < 0.3:
                # A new occurrence of the class later in the recording.
                occurrence, slice_id = occurrence + 1, 0
                start = round(start + float(rng.uniform(1.0, 30.0)), 6)
                salience = int(rng.integers(1, 3))
            last = k == rec["count"] - 1
            if last and rng.random() < 0.5:
                dur = float(rng.uniform(min_duration, max_duration))
            else:
                dur = float(max_duration)
            # Whole samples, so csv durations match the file headers.
            dur = max(round(dur * sr), 1) / sr
            rows.append({
                "slice_file_name": (
                    f"{rec['fsID']}-{rec['classID']}-{occurrence}-"
                    f"{slice_id}.wav"
                ),
                "fsID": rec["fsID"],
                "start": start,
                "end": round(start + dur, 6),
                "salience": salience,
                "fold": rec["fold"],
                "classID": rec["classID"],
                "class": CLASSES[rec["classID"]],
                "duration": dur,
                "slice_id": slice_id + 100 * occurrence,
                "sample_rate": sr,
                "channels": ch,
                "subtype": st,
            })
            start = round(start + dur, 6)
            slice_id += 1
    return rows


def generate_synthetic_urbansound(root, clips_per_class_per_fold=2, seed=0,
                                  max_duration=4.0, min_duration=None,
                                  overwrite=False):
    """Write a synthetic UrbanSound8K under ``root/UrbanSound8K``.

    Arguments
    ---------
    root : str
        Parent folder; ``UrbanSound8K/`` is created inside it.
    clips_per_class_per_fold : int
        Slices per class in each of the 10 folds (the real set has about
        87); 1 or 2 is enough for tests. About 45 ms per 4 s clip on one
        CPU core, so a full-size set takes some 7 minutes.
    seed : int
        Same seed, same csv and same audio files (byte for byte, except
        that libsndfile stamps float files with the time of writing).
    max_duration : float
        Longest clip in seconds (4.0 in the real set). Smaller values make
        tiny test sets faster.
    min_duration : float, optional
        Shortest clip in seconds; ``min(0.5, max_duration)`` if None.
    overwrite : bool
        Replace an existing ``root/UrbanSound8K`` (only if it holds a
        ``metadata/UrbanSound8K.csv``); otherwise refuse.

    Returns
    -------
    str
        The ``UrbanSound8K`` folder.

    Raises
    ------
    FileExistsError
        If the dataset already exists and ``overwrite`` is False.

    Example
    -------
    >>> import csv, os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> us8k = generate_synthetic_urbansound(
    ...     root, clips_per_class_per_fold=1, max_duration=0.2,
    ...     min_duration=0.1)
    >>> sorted(os.listdir(us8k))
    ['audio', 'metadata']
    >>> with open(os.path.join(us8k, "metadata", "UrbanSound8K.csv")) as f:
    ...     rows = list(csv.reader(f))
    >>> ",".join(rows[0])
    'slice_file_name,fsID,start,end,salience,fold,classID,class'
    >>> len(rows) - 1
    100
    """
    if clips_per_class_per_fold < 1:
        raise ValueError("clips_per_class_per_fold must be >= 1")
    if min_duration is None:
        min_duration = min(0.5, max_duration)
    if not 0 < min_duration <= max_duration:
        raise ValueError("need 0 < min_duration <= max_duration")
    us8k = os.path.join(os.path.abspath(root), "UrbanSound8K")
    csv_path = os.path.join(us8k, "metadata", "UrbanSound8K.csv")
    if os.path.exists(us8k):
        if not overwrite:
            raise FileExistsError(
                f"{us8k} exists; pass overwrite=True to replace it"
            )
        if not os.path.isfile(csv_path):
            # Refuse to delete a folder that does not look like ours.
            raise FileExistsError(
                f"{us8k} exists but holds no metadata/UrbanSound8K.csv; "
                "not deleting it"
            )
        shutil.rmtree(us8k)
    for fold in range(1, N_FOLDS + 1):
        os.makedirs(os.path.join(us8k, "audio", f"fold{fold}"))
    os.makedirs(os.path.join(us8k, "metadata"))

    rows = _plan(clips_per_class_per_fold, seed, max_duration, min_duration)
    for row in rows:
        x = synthesize_clip(
            row["classID"], row["duration"], row["sample_rate"], seed=seed,
            fs_id=row["fsID"], slice_id=row["slice_id"],
            salience=row["salience"], channels=row["channels"],
        )
        path = os.path.join(
            us8k, "audio", f"fold{row['fold']}", row["slice_file_name"]
        )
        sf.write(path, x.astype(np.float32), row["sample_rate"],
                 subtype=row["subtype"], format="WAV")
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for row in rows:
            writer.writerow([row[k] for k in CSV_HEADER])
    return us8k


def main(argv=None):
    """Command-line entry point (``--help`` lists the options).

    Arguments
    ---------
    argv : list of str, optional
        Arguments; ``sys.argv[1:]`` if None.

    Example
    -------
    >>> import tempfile
    >>> main(["--root", tempfile.mkdtemp(), "--clips_per_class_per_fold",
    ...       "1", "--max_duration", "0.1", "--min_duration", "0.05"])
    Wrote 100 clips to ...UrbanSound8K
    """
    parser = ArgumentParser(
        description="Write a synthetic UrbanSound8K in the official layout."
    )
    parser.add_argument("--root", required=True,
                        help="parent folder of UrbanSound8K/")
    parser.add_argument("--clips_per_class_per_fold", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max_duration", type=float, default=4.0)
    parser.add_argument("--min_duration", type=float, default=None,
                        help="default: min(0.5, max duration)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    us8k = generate_synthetic_urbansound(
        args.root, args.clips_per_class_per_fold, args.seed,
        args.max_duration, args.min_duration, args.overwrite,
    )
    n = args.clips_per_class_per_fold * len(CLASSES) * N_FOLDS
    print(f"Wrote {n} clips to {us8k}")


if __name__ == "__main__":
    main()
