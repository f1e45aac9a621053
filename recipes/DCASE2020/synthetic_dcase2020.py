"""Synthetic DCASE2020 Task 1A development set in the official layout.

The real TAU Urban Acoustic Scenes 2020 Mobile set cannot be downloaded on
every machine, yet the recipe, its data preparation and the augmentations
need something with the same shape to run on. This module renders a small,
deterministic (by seed) stand-in::

    <root>/TAU-urban-acoustic-scenes-2020-mobile-development/
        audio/<scene>-<city>-<location>-<segment>-<device>.wav
        meta.csv
        evaluation_setup/fold1_train.csv
        evaluation_setup/fold1_evaluate.csv
        evaluation_setup/fold1_test.csv

Clips are mono, 24-bit PCM. The csv files are tab-separated with the
official headers.

How the signals are built
-------------------------
* Every scene has its own background (coloured noise with a spectral tilt,
  resonant bumps and a shelf above 8 kHz), an optional engine-like
  harmonic hum with slow amplitude and frequency modulation, and its own
  mix of events: clicks, tonal beeps, frequency sweeps (bird chirps, motor
  whine, wheel squeal), speech-like babble bursts, passing-vehicle swells
  and band-limited hiss. Several scenes share ingredients (bus, metro and
  tram all hum; airport, metro station and shopping mall all babble), so
  the task is learnable but not trivial.
* ``public_square`` and ``street_pedestrian`` are identical below 8 kHz and
  differ only above it, so a front-end that ignores high frequencies
  confuses them.
* Every city and every recording location perturbs gain, tilt, resonance
  positions, hum pitch, event rates and levels.
* A segment is one underlying scene signal. Device ``a`` (the reference)
  records every segment; for a fraction of the segments the same signal is
  also rendered through the other devices, sample-exactly aligned, as the
  b, c and s1-s6 recordings of the real set are parallel to device a.
  Each device has its own zero-phase frequency response (band limits,
  tilt, resonances, gain, see :func:`device_response`) and its own sensor
  noise. Devices s4-s6 appear only in the evaluation split.
* Whole recording locations go to one split, never single segments.

Random draws are keyed by what they describe (seed, scene, city, location,
segment, device), not by generation order, so a clip does not change when
other parameters add or remove clips around it.

Authors
 * speechbrain-relevance developers
"""

import csv
import functools
import json
import logging
import math
import os
import shutil
import sys

import numpy as np
import soundfile as sf

from speechbrain_relevance.cli import ArgumentParser

# Recipe modules import their siblings by name, as train.py does.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare_dcase2020 import (  # noqa: E402
    DCASE_DEVICES,
    DCASE_DIRNAME,
    DCASE_EVAL_ONLY_DEVICES,
    DCASE_REFERENCE_DEVICE,
    DCASE_SCENES,
)

logger = logging.getLogger(__name__)

DATASET_DIRNAME = DCASE_DIRNAME
SCENES = DCASE_SCENES
CITIES = (
    "amsterdam",
    "barcelona",
    "helsinki",
    "lisbon",
    "london",
    "lyon",
    "madrid",
    "milan",
    "prague",
    "paris",
    "stockholm",
    "vienna",
)
DEVICES = DCASE_DEVICES
REFERENCE_DEVICE = DCASE_REFERENCE_DEVICE
EVAL_ONLY_DEVICES = DCASE_EVAL_ONLY_DEVICES
SAMPLE_RATE = 44100
OPTIONS_FILENAME = "synthetic_dcase_options.json"

# Largest value a 24-bit sample can hold; libsndfile does not clip floats
# converted to integers by itself.
_PCM24_MAX = 1.0 - 2.0**-23
_PEAK_LIMIT = 0.3

# Tags that keep the random streams of different purposes apart.
_TAG_SPLIT, _TAG_PARALLEL, _TAG_CITY, _TAG_LOCATION = 1, 2, 3, 4
_TAG_SEGMENT, _TAG_SENSOR = 5, 6

# Scene recipes. Levels of hum, layers and events are dB relative to the
# background RMS; "level_db" is the background RMS in dBFS. Bumps are
# (centre Hz, width in octaves, gain dB).
_SCENE_PROFILES = {
    "airport": {
        "level_db": -36.0,
        "tilt": -3.0,
        "bumps": [(300.0, 1.2, 3.0), (2000.0, 1.0, 2.0)],
        "hf_db": -6.0,
        "hum": {"f0": (48.0, 62.0), "n": 6, "decay": 1.5,
                "level_db": -12.0, "am": 0.1},
        "events": {
            "babble": {"rate": 0.9, "level_db": 2.0},
            "beep": {"rate": 0.1, "level_db": -2.0, "freqs": (500, 1000),
                     "dur": (0.3, 0.6)},
            "click": {"rate": 0.3, "level_db": -4.0},
        },
    },
    "bus": {
        "level_db": -30.0,
        "tilt": -6.0,
        "bumps": [(90.0, 0.7, 8.0), (600.0, 1.0, 2.0)],
        "hf_db": -12.0,
        "hum": {"f0": (28.0, 42.0), "n": 16, "decay": 1.0,
                "level_db": -3.0, "am": 0.35},
        "events": {
            "babble": {"rate": 0.3, "level_db": -4.0},
            "click": {"rate": 0.6, "level_db": -6.0},
            "beep": {"rate": 0.04, "level_db": -6.0, "freqs": (2000, 3000),
                     "dur": (0.1, 0.3)},
        },
    },
    "metro": {
        "level_db": -28.0,
        "tilt": -4.0,
        "bumps": [(450.0, 1.0, 5.0), (2500.0, 0.6, 3.0)],
        "hf_db": -8.0,
        "hum": {"f0": (85.0, 120.0), "n": 10, "decay": 1.2,
                "level_db": -8.0, "am": 0.3},
        "events": {
            "chirp": {"rate": 0.35, "level_db": -3.0, "band": (250, 1400),
                      "dur": (1.0, 3.0)},
            "click": {"rate": 1.2, "level_db": -5.0},
            "babble": {"rate": 0.15, "level_db": -8.0},
        },
    },
    "metro_station": {
        "level_db": -34.0,
        "tilt": -3.5,
        "bumps": [(400.0, 1.5, 3.0), (1500.0, 1.0, 2.0)],
        "hf_db": -7.0,
        "hum": {"f0": (55.0, 70.0), "n": 5, "decay": 1.5,
                "level_db": -14.0, "am": 0.1},
        "events": {
            "babble": {"rate": 1.0, "level_db": 0.0},
            "beep": {"rate": 0.2, "level_db": -3.0, "freqs": (600, 1300),
                     "dur": (0.15, 0.5)},
            "chirp": {"rate": 0.08, "level_db": -6.0, "band": (250, 1400),
                      "dur": (1.0, 3.0)},
            "click": {"rate": 0.4, "level_db": -6.0},
        },
    },
    "park": {
        "level_db": -44.0,
        "tilt": -2.0,
        "bumps": [(3500.0, 1.0, 4.0)],
        "hf_db": -2.0,
        "events": {
            "chirp": {"rate": 2.0, "level_db": 4.0, "band": (2000, 7000),
                      "dur": (0.04, 0.2)},
            "babble": {"rate": 0.15, "level_db": -6.0},
        },
        "hiss": {"band": (3000.0, 12000.0), "level_db": -8.0},
    },
    "public_square": {
        "level_db": -36.0,
        "tilt": -3.0,
        "bumps": [(700.0, 1.5, 3.0)],
        "hf_db": -10.0,
        "hum": {"f0": (30.0, 45.0), "n": 8, "decay": 1.3,
                "level_db": -16.0, "am": 0.3},
        "events": {
            "babble": {"rate": 0.7, "level_db": -1.0},
            "click": {"rate": 1.0, "level_db": -5.0},
        },
        "swell": {"rate": 0.1, "level_db": -6.0},
    },
    "shopping_mall": {
        "level_db": -34.0,
        "tilt": -3.0,
        "bumps": [(1000.0, 1.0, 4.0)],
        "hf_db": -6.0,
        "hum": {"f0": (45.0, 60.0), "n": 4, "decay": 2.0,
                "level_db": -18.0, "am": 0.05},
        "events": {
            "babble": {"rate": 1.5, "level_db": 0.0},
            "beep": {"rate": 0.6, "level_db": -4.0, "freqs": (200, 900),
                     "dur": (0.2, 0.6)},
            "click": {"rate": 0.3, "level_db": -7.0},
        },
    },
    "street_traffic": {
        "level_db": -28.0,
        "tilt": -5.0,
        "bumps": [(120.0, 1.0, 6.0), (1000.0, 1.5, 2.0)],
        "hf_db": -4.0,
        "hum": {"f0": (25.0, 40.0), "n": 12, "decay": 1.1,
                "level_db": -8.0, "am": 0.5},
        "events": {
            "click": {"rate": 0.2, "level_db": -6.0},
            "babble": {"rate": 0.05, "level_db": -8.0},
            "beep": {"rate": 0.03, "level_db": -4.0, "freqs": (400, 500),
                     "dur": (0.2, 0.8)},
        },
        "swell": {"rate": 0.4, "level_db": 0.0},
    },
    "tram": {
        "level_db": -31.0,
        "tilt": -4.5,
        "bumps": [(200.0, 1.0, 5.0), (1500.0, 0.5, 3.0)],
        "hf_db": -8.0,
        "hum": {"f0": (95.0, 105.0), "n": 8, "decay": 1.0,
                "level_db": -8.0, "am": 0.2},
        "events": {
            "click": {"rate": 1.5, "level_db": -4.0},
            "beep": {"rate": 0.1, "level_db": -4.0, "freqs": (700, 1100),
                     "dur": (0.2, 0.5)},
            "babble": {"rate": 0.3, "level_db": -5.0},
            "chirp": {"rate": 0.05, "level_db": -6.0, "band": (2000, 4000),
                      "dur": (0.5, 1.5)},
        },
    },
}
# The high-frequency twin: the same below 8 kHz, brighter and hissing above.
_SCENE_PROFILES["street_pedestrian"] = dict(
    _SCENE_PROFILES["public_square"],
    hf_db=2.0,
    hiss={"band": (9000.0, 13500.0), "level_db": -6.0},
)

# Device responses: (high-pass Hz, order), (low-pass Hz, order), tilt in
# dB/octave around 1 kHz, resonances (centre Hz, width octaves, gain dB),
# gain dB and sensor-noise RMS in dBFS. Device a is the near-flat reference.
_DEVICE_PROFILES = {
    "a": {"hp": (15.0, 2), "lp": (20500.0, 8), "tilt": 0.0, "res": [],
          "gain_db": 0.0, "noise_db": -84.0},
    "b": {"hp": (80.0, 2), "lp": (16000.0, 6), "tilt": -0.8,
          "res": [(3000.0, 0.5, 4.0)], "gain_db": -3.0, "noise_db": -72.0},
    "c": {"hp": (150.0, 2), "lp": (14000.0, 6), "tilt": 0.5,
          "res": [(1200.0, 0.6, -4.0), (6000.0, 0.4, 5.0)], "gain_db": 2.0,
          "noise_db": -70.0},
    "s1": {"hp": (100.0, 2), "lp": (18000.0, 6), "tilt": -0.3,
           "res": [(2500.0, 0.3, 6.0)], "gain_db": -1.0, "noise_db": -68.0},
    "s2": {"hp": (200.0, 3), "lp": (12000.0, 6), "tilt": 0.8,
           "res": [(800.0, 0.7, 3.0)], "gain_db": 1.0, "noise_db": -66.0},
    "s3": {"hp": (60.0, 2), "lp": (15000.0, 4), "tilt": -1.2,
           "res": [(4500.0, 0.5, -5.0)], "gain_db": -2.0, "noise_db": -70.0},
    "s4": {"hp": (250.0, 3), "lp": (11000.0, 6), "tilt": 0.4,
           "res": [(1800.0, 0.4, 5.0), (5000.0, 0.5, -3.0)], "gain_db": 0.0,
           "noise_db": -64.0},
    "s5": {"hp": (120.0, 2), "lp": (17000.0, 6), "tilt": -0.6,
           "res": [(350.0, 0.6, 4.0), (7000.0, 0.5, 4.0)], "gain_db": -4.0,
           "noise_db": -68.0},
    "s6": {"hp": (300.0, 4), "lp": (9000.0, 8), "tilt": 1.0,
           "res": [(2200.0, 0.5, 6.0)], "gain_db": 3.0, "noise_db": -62.0},
}


def device_response(device, freqs):
    """Return the magnitude response of a synthetic recording device.

    These are the ground-truth responses the generator applies (zero
    phase), handy for checking a spectrum-correction estimate.

    Arguments
    ---------
    device : str
        One of :data:`DEVICES`.
    freqs : array_like
        Frequencies in Hz.

    Returns
    -------
    numpy.ndarray
        Linear magnitude at ``freqs``.

    Example
    -------
    >>> device_response("a", [1000.0]).round(3)
    array([1.])
    >>> bool(device_response("s6", [15000.0])[0] < 0.1)
    True
    """
    if device not in _DEVICE_PROFILES:
        raise ValueError(f"unknown device {device!r}, expected {DEVICES}")
    prof = _DEVICE_PROFILES[device]
    f = np.maximum(np.asarray(freqs, dtype=np.float64), 1e-3)
    octaves = np.log2(np.maximum(f, 20.0) / 1000.0)
    db = prof["gain_db"] + prof["tilt"] * octaves
    for fc, width, gain in prof["res"]:
        db = db + gain * np.exp(-0.5 * (np.log2(f / fc) / width) ** 2)
    hp, hp_order = prof["hp"]
    lp, lp_order = prof["lp"]
    mag = 10.0 ** (db / 20.0)
    mag = mag / np.sqrt(1.0 + (hp / f) ** (2 * hp_order))
    return mag / np.sqrt(1.0 + (f / lp) ** (2 * lp_order))


def _rng(seed, *key):
    # One independent stream per described thing, whatever the order of
    # generation.
    return np.random.default_rng([int(seed), *[int(k) for k in key]])


def _db(x):
    return 10.0 ** (x / 20.0)


def _rms_normalize(x):
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _envelope_db(freqs, tilt, bumps, hf_db, bump_scale=1.0):
    # Background colour: tilt around 1 kHz, resonant bumps, a smooth
    # shelf from 8 kHz up and a steep cut below 20 Hz (no DC rumble).
    f = np.maximum(freqs, 1.0)
    db = tilt * np.log2(np.maximum(f, 20.0) / 1000.0)
    for fc, width, gain in bumps:
        octs = np.log2(f / (fc * bump_scale)) / width
        db = db + gain * np.exp(-0.5 * octs**2)
    shelf = 1.0 / (1.0 + np.exp(-np.log2(f / 8000.0) / 0.08))
    db = db + hf_db * shelf
    return db - 60.0 * (f < 20.0)


def _band_gain(freqs, lo, hi, sharpness=0.1):
    # Smooth band-pass on a log-frequency axis.
    logf = np.log2(np.maximum(freqs, 1.0))
    rise = 1.0 / (1.0 + np.exp(-(logf - np.log2(lo)) / sharpness))
    fall = 1.0 / (1.0 + np.exp((logf - np.log2(hi)) / sharpness))
    return rise * fall


def _fast_len(n):
    # pocketfft is slow on lengths with large prime factors (events have
    # random lengths): round up to the next 7-smooth length.
    m = max(int(n), 1)
    while True:
        rest = m
        for p in (2, 3, 5, 7):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 1


def _shaped_noise(rng, n, sr, gain_fn):
    # White noise coloured in the frequency domain, RMS 1. ``gain_fn`` maps
    # frequencies (Hz) to linear gains.
    n_fft = _fast_len(n)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    spec = rng.standard_normal(freqs.shape) + 1j * rng.standard_normal(
        freqs.shape
    )
    return _rms_normalize(np.fft.irfft(spec * gain_fn(freqs), n=n_fft)[:n])


def _hum(rng, n, sr, hum, f0):
    # Engine-like harmonic hum. cos(k*theta) comes from the Chebyshev
    # recursion, which costs one cosine for all harmonics.
    t = np.arange(n) / sr
    fm_rate = rng.uniform(0.05, 0.4)
    inst_f = f0 * (1.0 + 0.02 * np.sin(2 * np.pi * fm_rate * t
                                        + rng.uniform(0, 2 * np.pi)))
    theta = 2 * np.pi * np.cumsum(inst_f) / sr + rng.uniform(0, 2 * np.pi)
    c1 = np.cos(theta)
    prev, cur = np.ones(n), c1
    out = np.zeros(n)
    nyquist_harmonics = int(0.45 * sr / (f0 * 1.02))
    for k in range(1, min(hum["n"], nyquist_harmonics) + 1):
        out += cur / k ** hum["decay"]
        prev, cur = cur, 2.0 * c1 * cur - prev
    am_rate = rng.uniform(0.05, 0.4)
    am = 1.0 + hum["am"] * np.sin(2 * np.pi * am_rate * t
                                  + rng.uniform(0, 2 * np.pi))
    return _rms_normalize(out) * am


def _fade(n, sr, fade_s=0.005):
    # Raised-cosine on/off ramps so tonal events do not click.
    m = max(1, min(n // 2, int(fade_s * sr)))
    win = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(m) / m)
    win[:m] = ramp
    win[n - m:] = ramp[::-1]
    return win


def _event_click(rng, sr, _params):
    n = max(8, int(sr * rng.uniform(0.003, 0.03)))
    tau = n / rng.uniform(3.0, 6.0)
    sig = rng.standard_normal(n) * np.exp(-np.arange(n) / tau)
    if rng.random() < 0.5:
        # Some clicks are bright (hard impacts), some dull.
        sig = np.diff(sig, prepend=0.0)
    return _rms_normalize(sig)


def _event_beep(rng, sr, params):
    lo, hi = params["freqs"]
    n = int(sr * rng.uniform(*params.get("dur", (0.08, 0.4))))
    t = np.arange(n) / sr
    f = rng.uniform(lo, hi)
    # A second tone follows half-way in chime-like beeps.
    if rng.random() < 0.5:
        f = np.where(t < t[-1] / 2, f, f * rng.choice([0.75, 0.8, 1.25]))
    phase = 2 * np.pi * np.cumsum(f) / sr
    sig = np.sin(phase) + 0.3 * np.sin(2 * phase)
    return _rms_normalize(sig * _fade(n, sr))


def _event_chirp(rng, sr, params):
    lo, hi = params["band"]
    n = int(sr * rng.uniform(*params["dur"]))
    t = np.arange(n) / sr
    f_a, f_b = np.exp(rng.uniform(np.log(lo), np.log(hi), size=2))
    # Exponential sweep between two random frequencies of the band.
    inst_f = f_a * (f_b / f_a) ** (t / max(t[-1], 1e-9))
    phase = 2 * np.pi * np.cumsum(inst_f) / sr
    env = _fade(n, sr, fade_s=0.1 * n / sr)
    return _rms_normalize(np.sin(phase) * env)


def _event_babble(rng, sr, params):
    # Speech-like burst: a glottal pulse train with vibrato, shaped by
    # three formants and a syllabic (about 4 Hz) envelope, plus a little
    # fricative noise.
    n = int(sr * rng.uniform(0.4, 1.8))
    t = np.arange(n) / sr
    f0 = rng.uniform(90.0, 240.0) * (
        1.0 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)
    )
    cycles = np.cumsum(f0) / sr
    pulses = np.diff(np.floor(cycles), prepend=0.0)
    n_fft = _fast_len(n)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    formants = (
        rng.uniform(300, 800), rng.uniform(900, 2200),
        rng.uniform(2300, 3200),
    )
    gain = np.zeros_like(freqs)
    for i, fc in enumerate(formants):
        gain += _db(-6.0 * i) * np.exp(-0.5 * ((freqs - fc) / (0.08 * fc
                                                               + 60)) ** 2)
    gain *= 1.0 / (1.0 + (freqs / 5000.0) ** 4)
    voiced = np.fft.irfft(np.fft.rfft(pulses, n_fft) * gain, n=n_fft)[:n]
    voiced = _rms_normalize(voiced)
    fricative = _shaped_noise(
        rng, n, sr, lambda f: _band_gain(f, 3500.0, 8000.0)
    )
    syll = np.maximum(0.0, np.sin(2 * np.pi * rng.uniform(3.0, 5.5) * t
                                  + rng.uniform(0, 2 * np.pi))) ** 0.7
    sig = syll * voiced + 0.15 * (1.0 - syll) * fricative
    return _rms_normalize(sig * _fade(n, sr, 0.02))


_EVENT_RENDERERS = {
    "click": _event_click,
    "beep": _event_beep,
    "chirp": _event_chirp,
    "babble": _event_babble,
}


def _city_variation(seed, city_idx):
    rng = _rng(seed, _TAG_CITY, city_idx)
    return {"gain_db": rng.normal(0, 2.0), "tilt": rng.normal(0, 0.4)}


def _location_variation(seed, scene_idx, city_idx, loc_num, profile):
    rng = _rng(seed, _TAG_LOCATION, scene_idx, city_idx, loc_num)
    var = {
        "gain_db": rng.normal(0, 3.0),
        "tilt": rng.normal(0, 0.7),
        "hf_db": rng.normal(0, 2.0),
        "bump_scale": 2.0 ** rng.normal(0, 0.15),
        "rate": {},
        "level_db": {},
    }
    for name in sorted(profile["events"]):
        var["rate"][name] = math.exp(rng.normal(0, 0.35))
        var["level_db"][name] = rng.normal(0, 2.0)
    if "hum" in profile:
        var["hum_f0"] = rng.uniform(*profile["hum"]["f0"])
    return var


def _render_segment(rng, scene, city_var, loc_var, n, sr):
    """Render one underlying scene signal (before any device)."""
    prof = _SCENE_PROFILES[scene]
    tilt = prof["tilt"] + city_var["tilt"] + loc_var["tilt"]
    mix = _shaped_noise(rng, n, sr, lambda f: _db(_envelope_db(
        f, tilt, prof["bumps"], prof["hf_db"] + loc_var["hf_db"],
        loc_var["bump_scale"],
    )))
    if "hum" in prof:
        hum = prof["hum"]
        f0 = loc_var["hum_f0"] * 2.0 ** rng.normal(0, 0.01)
        mix += _db(hum["level_db"]) * _hum(rng, n, sr, hum, f0)
    if "swell" in prof:
        # Passing vehicles: low-passed noise under Gaussian bumps in time.
        sw = prof["swell"]
        t = np.arange(n) / sr
        dur = n / sr
        count = rng.poisson(sw["rate"] * (dur + 4.0))
        centres = rng.uniform(-2.0, dur + 2.0, size=count)
        widths = rng.uniform(0.5, 1.2, size=count)
        amps = _db(rng.normal(0, 3.0, size=count))
        shape = np.zeros(n)
        for c, w, a in zip(centres, widths, amps):
            shape += a * np.exp(-0.5 * ((t - c) / w) ** 2)
        noise = _shaped_noise(rng, n, sr, lambda f: _db(
            _envelope_db(f, -5.0, [(800.0, 1.0, 6.0)], -6.0)
        ))
        mix += _db(sw["level_db"]) * shape * noise
    # At low sample rates a hiss band above Nyquist would be RMS-normalised
    # from almost nothing into audible noise below it: leave it out.
    if "hiss" in prof and prof["hiss"]["band"][0] < 0.45 * sr:
        hs = prof["hiss"]
        band = (hs["band"][0], min(hs["band"][1], 0.45 * sr))
        t = np.arange(n) / sr
        mod = 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t
                                 + rng.uniform(0, 2 * np.pi))
        noise = _shaped_noise(rng, n, sr, lambda f: _band_gain(f, *band))
        mix += _db(hs["level_db"]) * mod * noise
    for name in sorted(prof["events"]):
        params = prof["events"][name]
        rate = params["rate"] * loc_var["rate"][name]
        level = _db(params["level_db"] + loc_var["level_db"][name])
        for _ in range(rng.poisson(rate * n / sr)):
            sig = _EVENT_RENDERERS[name](rng, sr, params)
            sig = sig * level * _db(rng.normal(0, 3.0))
            start = int(rng.integers(-len(sig) // 2, n))
            lo, hi = max(start, 0), min(start + len(sig), n)
            if hi > lo:
                mix[lo:hi] += sig[lo - start:hi - start]
    level_db = (
        prof["level_db"] + city_var["gain_db"] + loc_var["gain_db"]
        + rng.normal(0, 1.0)
    )
    mix *= _db(level_db)
    # Recorder headroom: loud segments are turned down as a whole, so that
    # no device (gains and resonances up to about +9 dB) clips.
    peak = np.max(np.abs(mix))
    return mix * min(1.0, _PEAK_LIMIT / max(peak, 1e-12))


@functools.lru_cache(maxsize=32)
def _cached_response(device, n_fft, sr):
    return device_response(device, np.fft.rfftfreq(n_fft, 1.0 / sr))


def _record(spectrum, n, sr, device, sensor_rng):
    # Zero-phase filtering keeps every device sample-aligned with device a.
    n_fft = _fast_len(n)
    response = _cached_response(device, n_fft, sr)
    wav = np.fft.irfft(spectrum * response, n=n_fft)[:n]
    noise_db = _DEVICE_PROFILES[device]["noise_db"]
    wav += _db(noise_db) * sensor_rng.standard_normal(n)
    return np.clip(wav, -1.0, _PCM24_MAX)


def _assign_splits(seed, scene_idx, locations, evaluate_fraction):
    # Per scene, a share of whole locations goes to the evaluation split;
    # each split keeps at least one location when there are two or more.
    n_loc = len(locations)
    if n_loc < 2:
        return {loc: "train" for loc in locations}
    n_eval = min(max(round(evaluate_fraction * n_loc), 1), n_loc - 1)
    if evaluate_fraction <= 0:
        n_eval = 0
    order = _rng(seed, _TAG_SPLIT, scene_idx).permutation(n_loc)
    eval_idx = set(order[:n_eval].tolist())
    return {
        loc: ("evaluate" if i in eval_idx else "train")
        for i, loc in enumerate(locations)
    }


def _plan(scenes, cities, n_locations, n_segments, devices,
          parallel_fraction, evaluate_fraction, seed):
    """List every segment and the devices that record it."""
    segments = []
    for scene in scenes:
        # Canonical scene indices keep location numbers and split draws
        # independent of which other scenes are rendered.
        s_idx = SCENES.index(scene)
        locations = [
            (c_idx, s_idx * n_locations + j)
            for c_idx in range(len(cities))
            for j in range(n_locations)
        ]
        split_of = _assign_splits(seed, s_idx, locations, evaluate_fraction)
        for (c_idx, loc_num) in locations:
            for seg in range(n_segments):
                segments.append({
                    "scene": scene, "scene_idx": s_idx,
                    "city": cities[c_idx], "city_idx": c_idx,
                    "location": loc_num, "segment": seg,
                    "split": split_of[(c_idx, loc_num)],
                    "devices": [REFERENCE_DEVICE],
                })
    # Parallel recordings: a share of each split's segments, at least one
    # when the fraction is positive, so every device shows up.
    for split in ("train", "evaluate"):
        others = [
            d for d in devices
            if d != REFERENCE_DEVICE
            and not (split == "train" and d in EVAL_ONLY_DEVICES)
        ]
        members = [s for s in segments if s["split"] == split]
        if not others or not members or parallel_fraction <= 0:
            continue
        n_par = min(len(members),
                    max(1, round(parallel_fraction * len(members))))
        rng = _rng(seed, _TAG_PARALLEL, split == "evaluate")
        for i in rng.choice(len(members), size=n_par, replace=False):
            members[int(i)]["devices"] = [REFERENCE_DEVICE, *others]
    return segments


def _stem(seg, device):
    return (f"{seg['scene']}-{seg['city']}-{seg['location']}-"
            f"{seg['segment']}-{device}")


def _write_tsv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def generate_synthetic_dcase(
    root,
    n_cities=4,
    n_locations_per_city=2,
    n_segments_per_location=2,
    duration=10.0,
    devices=DEVICES,
    parallel_fraction=0.3,
    evaluate_fraction=0.3,
    scenes=SCENES,
    sample_rate=SAMPLE_RATE,
    seed=0,
    overwrite=False,
):
    """Generate a synthetic DCASE2020 Task 1A development set.

    Writes ``<root>/TAU-urban-acoustic-scenes-2020-mobile-development`` in
    the official layout (see the module docstring). The output is
    byte-identical for identical arguments. The options are stored in
    ``synthetic_dcase_options.json`` inside the dataset folder; calling
    again with the same options reuses the existing set.

    Arguments
    ---------
    root : str
        Folder that receives the dataset folder (created if needed).
    n_cities : int
        Number of cities, taken in order from :data:`CITIES` (at most 12).
    n_locations_per_city : int
        Recording locations per city and scene.
    n_segments_per_location : int
        Segments recorded at each location (by device a).
    duration : float
        Clip length in seconds (10 s in the real set).
    devices : sequence of str
        Devices to render; must include the reference ``"a"``.
    parallel_fraction : float
        Share of the segments of each split that are also recorded, in
        parallel, by every other device allowed in that split (at least
        one segment per split when positive).
    evaluate_fraction : float
        Share of each scene's locations in the evaluation split (at least
        one, and at least one left for training, when a scene has two or
        more locations).
    scenes : sequence of str
        Subset of :data:`SCENES` to render.
    sample_rate : int
        Sample rate in Hz (44.1 kHz in the real set).
    seed : int
        Seed of every random draw.
    overwrite : bool
        Replace an existing set generated with other options (otherwise
        that raises ``FileExistsError``).

    Returns
    -------
    str
        Path of the dataset folder.

    Example
    -------
    >>> import os, tempfile
    >>> path = generate_synthetic_dcase(
    ...     tempfile.mkdtemp(), n_cities=1, n_segments_per_location=1,
    ...     duration=0.5, scenes=("bus", "park"),
    ... )
    >>> os.path.basename(path)
    'TAU-urban-acoustic-scenes-2020-mobile-development'
    >>> sorted(os.listdir(path))  # doctest: +NORMALIZE_WHITESPACE
    ['audio', 'evaluation_setup', 'meta.csv',
     'synthetic_dcase_options.json']
    >>> open(os.path.join(path, "meta.csv")).readline().split()
    ['filename', 'scene_label', 'identifier', 'source_label']
    """
    options = _checked_options(
        n_cities, n_locations_per_city, n_segments_per_location, duration,
        devices, parallel_fraction, evaluate_fraction, scenes, sample_rate,
        seed,
    )
    folder = os.path.join(os.path.abspath(root), DATASET_DIRNAME)
    options_path = os.path.join(folder, OPTIONS_FILENAME)
    if _is_generated(options_path, options):
        logger.info("Synthetic DCASE set already at %s, reusing", folder)
        return folder
    _clear_folder(folder, overwrite)
    os.makedirs(os.path.join(folder, "audio"), exist_ok=True)
    os.makedirs(os.path.join(folder, "evaluation_setup"), exist_ok=True)
    plan = _plan(options["scenes"], CITIES[:n_cities], n_locations_per_city,
                 n_segments_per_location, options["devices"],
                 parallel_fraction, evaluate_fraction, seed)
    meta_rows, fold_rows = _write_clips(folder, plan, options)
    _write_metadata(folder, meta_rows, fold_rows)
    # Written last: an interrupted run is never mistaken for a finished one.
    with open(options_path, "w", encoding="utf-8") as f:
        json.dump(options, f, indent=2, sort_keys=True)
    logger.info(
        "Wrote %d clips (%d train, %d evaluate) to %s", len(meta_rows),
        len(fold_rows["train"]), len(fold_rows["evaluate"]), folder,
    )
    return folder


def _checked_options(n_cities, n_locations_per_city, n_segments_per_location,
                     duration, devices, parallel_fraction, evaluate_fraction,
                     scenes, sample_rate, seed):
    """Check the generator's arguments; return them as the options dict."""
    devices = list(dict.fromkeys(devices))
    scenes = list(dict.fromkeys(scenes))
    unknown = [d for d in devices if d not in _DEVICE_PROFILES]
    if unknown:
        raise ValueError(f"unknown devices {unknown}, expected {DEVICES}")
    if REFERENCE_DEVICE not in devices:
        raise ValueError("devices must include the reference device 'a'")
    unknown = [s for s in scenes if s not in _SCENE_PROFILES]
    if unknown or not scenes:
        raise ValueError(f"unknown scenes {unknown}, expected {SCENES}")
    if not 1 <= n_cities <= len(CITIES):
        raise ValueError(f"n_cities must be in 1..{len(CITIES)}")
    if n_locations_per_city < 1 or n_segments_per_location < 1:
        raise ValueError("need at least one location and one segment")
    if duration <= 0 or sample_rate <= 0:
        raise ValueError("duration and sample_rate must be positive")
    if not (0 <= parallel_fraction <= 1 and 0 <= evaluate_fraction < 1):
        raise ValueError(
            "parallel_fraction must be in [0, 1], evaluate_fraction in [0, 1)"
        )
    # Devices and scenes keep their canonical order, so a reordered list
    # gives the same set.
    return {
        "n_cities": int(n_cities),
        "n_locations_per_city": int(n_locations_per_city),
        "n_segments_per_location": int(n_segments_per_location),
        "duration": float(duration),
        "devices": [d for d in DEVICES if d in devices],
        "parallel_fraction": float(parallel_fraction),
        "evaluate_fraction": float(evaluate_fraction),
        "scenes": [s for s in SCENES if s in scenes],
        "sample_rate": int(sample_rate),
        "seed": int(seed),
    }


def _is_generated(options_path, options):
    """Tell whether a finished set with these options is on disk."""
    if not os.path.isfile(options_path):
        return False
    with open(options_path, encoding="utf-8") as f:
        return json.load(f) == options


def _clear_folder(folder, overwrite):
    """Remove what an earlier set with other options wrote in ``folder``."""
    if not (os.path.isdir(folder) and os.listdir(folder)):
        return
    if not overwrite:
        raise FileExistsError(
            f"{folder} exists and was not generated with these options;"
            " pass overwrite=True to replace it"
        )
    # Remove only what this generator writes.
    for name in ("audio", "evaluation_setup"):
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
    for name in ("meta.csv", OPTIONS_FILENAME):
        if os.path.isfile(os.path.join(folder, name)):
            os.remove(os.path.join(folder, name))


def _write_clips(folder, plan, options):
    """Render and record every segment of ``plan`` on its devices.

    Returns the ``meta.csv`` rows and the ``{split: rows}`` of the fold
    files, unsorted.
    """
    seed = options["seed"]
    sample_rate = options["sample_rate"]
    n = int(round(options["duration"] * sample_rate))
    n_clips = sum(len(seg["devices"]) for seg in plan)
    logger.info("Generating %d clips of %.2f s (about %.0f MB) in %s",
                n_clips, options["duration"], n_clips * n * 3 / 1e6, folder)
    city_vars = [_city_variation(seed, i) for i in range(options["n_cities"])]
    loc_vars = {}
    meta_rows, fold_rows = [], {"train": [], "evaluate": []}
    n_clipped = 0
    for seg in plan:
        key = (seg["scene_idx"], seg["city_idx"], seg["location"])
        if key not in loc_vars:
            loc_vars[key] = _location_variation(
                seed, *key, _SCENE_PROFILES[seg["scene"]]
            )
        rng = _rng(seed, _TAG_SEGMENT, *key, seg["segment"])
        scene_wav = _render_segment(
            rng, seg["scene"], city_vars[seg["city_idx"]], loc_vars[key],
            n, sample_rate,
        )
        spectrum = np.fft.rfft(scene_wav, _fast_len(n))
        identifier = f"{seg['city']}-{seg['location']}"
        for device in seg["devices"]:
            sensor_rng = _rng(seed, _TAG_SENSOR, *key, seg["segment"],
                              DEVICES.index(device))
            wav = _record(spectrum, n, sample_rate, device, sensor_rng)
            n_clipped += int(np.sum(np.abs(wav) >= _PCM24_MAX))
            filename = f"audio/{_stem(seg, device)}.wav"
            sf.write(os.path.join(folder, filename), wav, sample_rate,
                     subtype="PCM_24")
            meta_rows.append((filename, seg["scene"], identifier, device))
            fold_rows[seg["split"]].append((filename, seg["scene"]))
    if n_clipped:
        logger.warning("%d samples clipped while writing %s", n_clipped,
                       folder)
    return meta_rows, fold_rows


def _write_metadata(folder, meta_rows, fold_rows):
    """Write ``meta.csv`` and the fold-1 files of ``evaluation_setup``."""
    setup_dir = os.path.join(folder, "evaluation_setup")
    _write_tsv(os.path.join(folder, "meta.csv"),
               ("filename", "scene_label", "identifier", "source_label"),
               sorted(meta_rows))
    _write_tsv(os.path.join(setup_dir, "fold1_train.csv"),
               ("filename", "scene_label"), sorted(fold_rows["train"]))
    _write_tsv(os.path.join(setup_dir, "fold1_evaluate.csv"),
               ("filename", "scene_label"), sorted(fold_rows["evaluate"]))
    _write_tsv(os.path.join(setup_dir, "fold1_test.csv"), ("filename",),
               [(row[0],) for row in sorted(fold_rows["evaluate"])])


def main(argv=None):
    """Command line: generate a synthetic DCASE2020 Task 1A set.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    str
        Path of the dataset folder.

    Example
    -------
    >>> import tempfile
    >>> path = main(["--root", tempfile.mkdtemp(), "--n_cities", "1",
    ...              "--n_segments_per_location", "1", "--duration", "0.2",
    ...              "--scenes", "bus,tram", "--devices", "a,b"])
    >>> path.endswith("TAU-urban-acoustic-scenes-2020-mobile-development")
    True
    """
    parser = ArgumentParser(
        description="Generate a synthetic DCASE2020 Task 1A development set"
        " in the official layout."
    )
    parser.add_argument("--root", required=True,
                        help="folder that receives the dataset folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n_cities", type=int, default=4)
    parser.add_argument("--n_locations_per_city", type=int, default=2)
    parser.add_argument("--n_segments_per_location", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0,
                        help="clip length in seconds")
    parser.add_argument("--devices", default=",".join(DEVICES),
                        help="comma-separated devices, must include a")
    parser.add_argument("--scenes", default=",".join(SCENES),
                        help="comma-separated scene subset")
    parser.add_argument("--parallel_fraction", type=float, default=0.3)
    parser.add_argument("--evaluate_fraction", type=float, default=0.3)
    parser.add_argument("--sample_rate", type=int, default=SAMPLE_RATE)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a set generated with other options")
    args = parser.parse_args(argv)
    return generate_synthetic_dcase(
        args.root,
        n_cities=args.n_cities,
        n_locations_per_city=args.n_locations_per_city,
        n_segments_per_location=args.n_segments_per_location,
        duration=args.duration,
        devices=[d.strip() for d in args.devices.split(",") if d.strip()],
        parallel_fraction=args.parallel_fraction,
        evaluate_fraction=args.evaluate_fraction,
        scenes=[s.strip() for s in args.scenes.split(",") if s.strip()],
        sample_rate=args.sample_rate,
        seed=args.seed,
        overwrite=args.overwrite,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(main(sys.argv[1:]))
