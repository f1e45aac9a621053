#!/usr/bin/env python3
r"""Offline audio-level augmentation of the DCASE2020 Task 1A training set.

The paper grows the DCASE2020 Task 1A training set from about 14k to about
80k clips with five waveform augmentations, all done once, before training:

* ``mix``: two clips of the same scene, each scaled by U(0.5, 1), summed;
* ``pitch``: pitch shift by U(-4, 4) semitones;
* ``stretch``: tempo change by a rate U(0.5, 2), cropped or tiled back to
  the original length;
* ``noise``: additive white (or pink) noise at a random SNR;
* ``spectrum``: spectrum correction, i.e. a device-``a`` clip whose STFT
  magnitude is multiplied by the per-bin response ratio of another device,
  estimated on time-aligned parallel recordings.

Unlike the authors' scripts, every source clip and every device response
comes from the given training manifest only (no evaluation data can leak
into training), and every non-reference device gets its own response.

The command reads only the training manifest written by the data
preparation, writes augmented wavs and ``augmented.json`` into
``--out_folder`` and, with ``--merged_manifest``, a manifest of the
original plus augmented clips to train on. Re-running with the same
arguments reuses the output; an interrupted run (even ``kill -9``)
resumes, skipping finished clips. The output does not depend on
``--num_workers``: every clip draws from its own random stream (seed and
clip id).

Example::

    python augment_dcase2020.py --train_manifest results/prep/train.json \\
        --out_folder results/augmented --copies 1 --seed 1234 \\
        --num_workers 4 \\
        --merged_manifest results/augmented/train_augmented.json

One copy per method and source clip turns the ~14k clips of the official
fold 1 into about 80k (the paper's size): ~14k each for mix, pitch,
stretch and noise, plus one spectrum-corrected copy per device-a clip.

The signal functions (pitch shift, time stretch, noise, same-class
mixing) are in :mod:`speechbrain_relevance.augment.audio`; this script
plans, draws, writes and resumes the recipe's augmented clips and holds
the spectrum correction, which needs DCASE2020's parallel recordings:
:func:`recording_key` and :func:`find_device_pairs` pair them,
:func:`estimate_device_responses` measures each device's response and
:func:`apply_device_response` filters a reference-device clip with it.

Authors
 * speechbrain-relevance developers
"""

import argparse
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed

import soundfile as sf
import torch

from speechbrain_relevance.augment.audio import (
    add_noise,
    mix_same_class,
    pitch_shift,
    time_stretch,
)
from speechbrain_relevance.cli import ArgumentParser, run_main
from speechbrain_relevance.data.audio import audio_info, load_audio
from speechbrain_relevance.data.preparation import write_json
from speechbrain_relevance.errors import AudioFileError

logger = logging.getLogger(__name__)

METHODS = ("mix", "pitch", "stretch", "noise", "spectrum")

# Bumped whenever the generated audio for given options would change, so
# that outputs of an older version are not silently reused.
_FORMAT_VERSION = 1


def augment_manifest(
    train_manifest,
    out_folder,
    sample_rate=44100,
    copies=1,
    methods=METHODS,
    seed=1234,
    pitch_range=(-4.0, 4.0),
    stretch_range=(0.5, 2.0),
    snr_range_db=(10.0, 30.0),
    noise_kind="white",
    mix_gain_range=(0.5, 1.0),
    reference_device="a",
    n_fft=2048,
    subtype="PCM_16",
    num_workers=1,
    progress=None,
):
    """Write augmented copies of a training manifest's clips (offline).

    Only the clips of ``train_manifest`` are read: mixing partners and
    device responses come from it too, so no evaluation data leaks in. For
    each method and each source clip, ``copies[method]`` new clips are
    written (``spectrum`` uses only reference-device clips as sources and
    draws the simulated device among those with an estimated response;
    ``mix`` draws a partner of the same scene, preferring another
    recording than the clip's own parallel ones). Outputs are mono wavs at
    ``sample_rate``, as many samples as their source, in
    ``out_folder/audio_<options hash>/``, listed in
    ``out_folder/augmented.json`` as
    ``{"<source id>_<method><copy>": {"wav", "duration", "scene", "device",
    "city", "identifier", ..., "augmentation": method, "source": [ids],
    "params": {...}}}``; every source field is kept, except ``device`` for
    ``spectrum``, which becomes the simulated device.

    The result is deterministic given the options (each clip has its own
    random stream, derived from ``seed`` and the clip's identity, and is
    computed with one intra-op thread), so it does not depend on
    ``num_workers`` or on the order in which clips finish. A run with the
    same options and an unchanged source manifest reuses finished output,
    and an interrupted run (even by ``kill -9``) resumes where it stopped:
    every wav is written to a temporary file and renamed into place, so a
    ``.wav`` that exists is complete; finished clips are skipped. One
    output folder serves one run at a time.

    Arguments
    ---------
    train_manifest : str
        SpeechBrain JSON manifest of the training split.
    out_folder : str
        Where the wavs, ``augmented.json`` and ``augment_options.json`` go.
    sample_rate : int
        Rate of the written audio (sources at other rates are resampled).
    copies : int or dict
        Augmented clips per source clip, for every method or per method
        (``{"pitch": 2, ...}``; methods left out get 0).
    methods : sequence of str
        Subset of ``("mix", "pitch", "stretch", "noise", "spectrum")``.
    seed : int
        Seed of all random draws.
    pitch_range : tuple of float
        Semitone bounds of the uniform pitch shift.
    stretch_range : tuple of float
        Bounds of the uniform tempo rate.
    snr_range_db : tuple of float
        Bounds of the uniform SNR of the added noise.
    noise_kind : str
        ``"white"`` or ``"pink"``.
    mix_gain_range : tuple of float
        Bounds of the uniform gains of the two mixed clips.
    reference_device : str
        Device whose clips spectrum correction starts from.
    n_fft : int
        STFT size of pitch shift, time stretch and spectrum correction.
    subtype : str
        soundfile sample format (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``).
    num_workers : int
        Processes computing clips; 1 computes them in this process.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Returns
    -------
    str
        Path of ``augmented.json``.

    Raises
    ------
    AudioFileError
        If a source file is missing or unreadable (names file and entry).
    ValueError
        On unknown methods, or ``spectrum`` without any device pair.

    Example
    -------
    >>> import tempfile, os, json, soundfile
    >>> folder = tempfile.mkdtemp()
    >>> wav = os.path.join(folder, "park-lyon-1-0-a.wav")
    >>> soundfile.write(wav, 0.1 * torch.randn(4000).numpy(), 8000)
    >>> manifest = os.path.join(folder, "train.json")
    >>> with open(manifest, "w") as f:
    ...     json.dump({"park-lyon-1-0-a": {
    ...         "wav": wav, "duration": 0.5, "scene": "park",
    ...         "device": "a", "city": "lyon", "identifier": "lyon-1"}}, f)
    >>> out = augment_manifest(manifest, os.path.join(folder, "aug"),
    ...     sample_rate=8000, methods=("pitch", "noise"), n_fft=256)
    >>> data = json.load(open(out))
    >>> sorted(data)
    ['park-lyon-1-0-a_noise0', 'park-lyon-1-0-a_pitch0']
    >>> data["park-lyon-1-0-a_pitch0"]["augmentation"]
    'pitch'
    """
    methods = tuple(methods)
    counts = _checked_counts(methods, copies, num_workers)
    train_manifest = os.path.abspath(train_manifest)
    out_folder = os.path.abspath(out_folder)
    with open(train_manifest, encoding="utf-8") as f:
        entries = json.load(f)

    options = {
        "format_version": _FORMAT_VERSION,
        "train_manifest": train_manifest,
        "train_manifest_sha256": _file_sha256(train_manifest),
        "sample_rate": int(sample_rate),
        "copies": counts,
        "methods": list(methods),
        "seed": int(seed),
        "pitch_range": list(pitch_range),
        "stretch_range": list(stretch_range),
        "snr_range_db": list(snr_range_db),
        "noise_kind": noise_kind,
        "mix_gain_range": list(mix_gain_range),
        "reference_device": reference_device,
        "n_fft": int(n_fft),
        "subtype": subtype,
    }
    audio_dir = _audio_folder(out_folder, options)
    manifest_path = os.path.join(out_folder, "augmented.json")
    options_path = os.path.join(out_folder, "augment_options.json")
    if _is_complete(manifest_path, options_path, options):
        logger.info("Reusing augmented manifest %s", manifest_path)
        return manifest_path

    # Fail before hours of work, not in the middle of it.
    _check_sources(entries)
    os.makedirs(audio_dir, exist_ok=True)
    write_json(options_path, options, newline=False)

    responses = {}
    if counts.get("spectrum", 0) > 0:
        responses = _device_responses(
            entries, audio_dir, reference_device, n_fft, sample_rate
        )
    state = {
        "entries": entries,
        "options": options,
        "partners": _mix_partners(entries) if "mix" in methods else {},
        "responses": responses,
    }
    planned, todo = _plan_clips(state, audio_dir)
    _remove_partial_writes(audio_dir)
    if len(todo) < len(planned):
        logger.info(
            "Resuming: %d of %d clips already written",
            len(planned) - len(todo), len(planned),
        )
    n_samples = _write_clips(
        todo, state, int(num_workers), len(planned), progress
    )
    out = _augmented_entries(planned, entries, n_samples, sample_rate)
    write_json(manifest_path, out, newline=False)
    logger.info("Wrote %d augmented clips to %s", len(out), manifest_path)
    return manifest_path


def merge_manifests(paths, out_path):
    """Combine several JSON manifests into one.

    Arguments
    ---------
    paths : sequence of str
        Manifests to merge, e.g. the original training manifest and
        ``augmented.json``.
    out_path : str
        Where the merged manifest is written.

    Returns
    -------
    dict
        The merged manifest.

    Raises
    ------
    ValueError
        If two manifests hold the same id with different entries.

    Example
    -------
    >>> import tempfile, os, json
    >>> folder = tempfile.mkdtemp()
    >>> for name, data in (("a.json", {"x": {"wav": "x.wav"}}),
    ...                    ("b.json", {"y": {"wav": "y.wav"}})):
    ...     json.dump(data, open(os.path.join(folder, name), "w"))
    >>> merged = merge_manifests(
    ...     [os.path.join(folder, n) for n in ("a.json", "b.json")],
    ...     os.path.join(folder, "all.json"))
    >>> sorted(merged)
    ['x', 'y']
    """
    merged = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        for key, entry in data.items():
            if key in merged and merged[key] != entry:
                raise ValueError(f"id {key!r} differs between manifests")
            merged[key] = entry
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    write_json(out_path, merged, newline=False)
    return merged


# ------------------------------ device responses


def _stft_magnitude(y, n_fft, hop_length):
    """Return the ``[freq, frames]`` magnitude STFT of a ``[time]`` clip."""
    window = torch.hann_window(n_fft, dtype=y.dtype)
    spec = torch.stft(
        y, n_fft, hop_length, window=window, center=True, pad_mode="reflect",
        return_complex=True,
    )
    return spec.abs()


def recording_key(entry_id, entry):
    """Return the recording a manifest entry is one device's copy of.

    Time-aligned parallel recordings of one sound on several devices have
    ids (or wav file names) ``<recording>-<device>`` that differ only in
    the device suffix, as DCASE2020's
    ``<scene>-<city>-<location>-<segment>-<device>``. The manifest id is
    tried first, then the wav file name.

    Arguments
    ---------
    entry_id : str
        Manifest id of the entry.
    entry : dict
        Manifest entry with ``"wav"`` and ``"device"``.

    Returns
    -------
    str or None
        ``<recording>``, or None if neither name ends with ``-<device>``.

    Example
    -------
    >>> recording_key("park-lyon-1-0-b", {"wav": "x.wav", "device": "b"})
    'park-lyon-1-0'
    >>> recording_key("clip7", {"wav": "/x/clip7-s1.wav", "device": "s1"})
    'clip7'
    >>> recording_key("clip7", {"wav": "/x/clip7.wav", "device": "b"}) is None
    True
    """
    suffix = "-" + str(entry["device"])
    stem = os.path.splitext(os.path.basename(str(entry["wav"])))[0]
    for name in (str(entry_id), stem):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def find_device_pairs(manifest_entries, reference_device="a"):
    """Find time-aligned (reference device, other device) recording pairs.

    Arguments
    ---------
    manifest_entries : dict
        Manifest ``{id: {"wav", "device", ...}}`` whose parallel
        recordings share a :func:`recording_key` (DCASE2020 ids
        ``<scene>-<city>-<location>-<segment>-<device>``).
    reference_device : str
        Device whose recordings are the reference of every pair.

    Returns
    -------
    dict
        ``{device: [(reference_id, device_id), ...]}`` in sorted order, for
        every non-reference device that has at least one pair.

    Example
    -------
    >>> entries = {
    ...     "park-lyon-1-0-a": {"wav": "/x/park-lyon-1-0-a.wav", "device": "a"},
    ...     "park-lyon-1-0-b": {"wav": "/x/park-lyon-1-0-b.wav", "device": "b"},
    ...     "park-lyon-1-1-c": {"wav": "/x/park-lyon-1-1-c.wav", "device": "c"},
    ... }
    >>> find_device_pairs(entries)
    {'b': [('park-lyon-1-0-a', 'park-lyon-1-0-b')]}
    """
    groups = defaultdict(dict)
    for entry_id, entry in manifest_entries.items():
        key = recording_key(entry_id, entry)
        if key is not None:
            groups[key][str(entry["device"])] = entry_id
    pairs = defaultdict(list)
    for key in sorted(groups):
        group = groups[key]
        if reference_device not in group:
            continue
        for device, entry_id in group.items():
            if device != reference_device:
                pairs[device].append((group[reference_device], entry_id))
    return {device: pairs[device] for device in sorted(pairs)}


def estimate_device_responses(
    manifest_entries,
    reference_device="a",
    n_fft=2048,
    hop_length=None,
    sample_rate=44100,
    max_pairs=None,
):
    """Estimate each device's magnitude response relative to a reference.

    For every non-reference device ``d``, all time-aligned pairs in
    ``manifest_entries`` (same scene-city-location-segment, one recording on
    the reference device, one on ``d``) are cropped to a common length and
    their magnitude STFTs computed. The response is the per-bin ratio
    ``mean |STFT_d| / mean |STFT_ref|``, the means running over all frames
    of all pairs of ``d``. Every device is accumulated separately (the
    authors' script reset its accumulator and kept one device only).

    Arguments
    ---------
    manifest_entries : dict
        Manifest ``{id: entry}``; only these entries are read.
    reference_device : str
        Reference device (``"a"`` in DCASE2020).
    n_fft : int
        STFT size; the ratios have ``n_fft // 2 + 1`` bins.
    hop_length : int, optional
        STFT hop, ``n_fft // 4`` by default.
    sample_rate : int
        Rate the audio is read at.
    max_pairs : int, optional
        Use at most this many pairs per device, evenly spread over the
        sorted pairs (all by default).

    Returns
    -------
    dict
        ``{device: torch.Tensor [n_fft // 2 + 1]}`` for every device with
        at least one pair.

    Example
    -------
    >>> import tempfile, os, soundfile
    >>> folder = tempfile.mkdtemp()
    >>> y = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    >>> entries = {}
    >>> for device, gain in (("a", 1.0), ("b", 0.5)):
    ...     path = os.path.join(folder, f"park-lyon-1-0-{device}.wav")
    ...     soundfile.write(path, (0.1 * gain * y).numpy(), 8000, "FLOAT")
    ...     entries[f"park-lyon-1-0-{device}"] = {"wav": path, "device": device}
    >>> ratios = estimate_device_responses(entries, n_fft=256, sample_rate=8000)
    >>> list(ratios), ratios["b"].shape
    (['b'], torch.Size([129]))
    >>> round(float(ratios["b"].median()), 3)
    0.5
    """
    if hop_length is None:
        hop_length = n_fft // 4
    responses = {}
    cache = {}

    def mean_magnitude(entry_id, wav):
        # A reference clip is paired with several devices: reuse its
        # spectrum when the crop length is the same.
        key = (entry_id, wav.shape[-1])
        if key not in cache:
            cache[key] = _stft_magnitude(wav, n_fft, hop_length).mean(dim=-1)
        return cache[key]

    for device, pairs in find_device_pairs(
        manifest_entries, reference_device
    ).items():
        if max_pairs is not None and len(pairs) > max_pairs:
            pairs = [
                pairs[i * len(pairs) // max_pairs] for i in range(max_pairs)
            ]
        sum_ref = torch.zeros(n_fft // 2 + 1, dtype=torch.float64)
        sum_dev = torch.zeros(n_fft // 2 + 1, dtype=torch.float64)
        for ref_id, dev_id in pairs:
            y_ref = _load_source(ref_id, manifest_entries, sample_rate)
            y_dev = _load_source(dev_id, manifest_entries, sample_rate)
            n = min(y_ref.shape[-1], y_dev.shape[-1])
            if n <= n_fft // 2:
                raise AudioFileError(
                    manifest_entries[dev_id]["wav"],
                    f"too short ({n} samples) for n_fft={n_fft}",
                )
            sum_ref += mean_magnitude(ref_id, y_ref[:n]).double()
            sum_dev += mean_magnitude(dev_id, y_dev[:n]).double()
        # Bins where the reference device records (almost) nothing give no
        # usable ratio; the floor only keeps them finite.
        floor = sum_ref.max() * torch.finfo(torch.float32).eps + 1e-30
        responses[device] = (sum_dev / sum_ref.clamp_min(floor)).float()
        logger.info(
            "Device %s: response estimated on %d pairs", device, len(pairs)
        )
    return responses


def apply_device_response(y_a, ratio, n_fft=2048, hop_length=None):
    """Simulate another device by filtering a reference-device clip.

    The STFT of ``y_a`` is multiplied bin-wise by the real, positive
    ``ratio`` (so magnitudes are scaled and phases kept) and inverted.

    Arguments
    ---------
    y_a : torch.Tensor
        ``[..., time]`` clip recorded on the reference device.
    ratio : torch.Tensor
        ``[n_fft // 2 + 1]`` response of the target device, from
        :func:`estimate_device_responses` with the same ``n_fft``.
    n_fft : int
        STFT size.
    hop_length : int, optional
        STFT hop, ``n_fft // 4`` by default.

    Returns
    -------
    torch.Tensor
        Filtered clip, same shape as ``y_a``.

    Example
    -------
    >>> y = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    >>> out = apply_device_response(y, torch.full((129,), 0.5), n_fft=256)
    >>> torch.allclose(out, 0.5 * y, atol=1e-5)
    True
    """
    if ratio.shape[-1] != n_fft // 2 + 1:
        raise ValueError(
            f"ratio has {ratio.shape[-1]} bins, expected {n_fft // 2 + 1} "
            f"for n_fft={n_fft}"
        )
    if hop_length is None:
        hop_length = n_fft // 4
    shape = y_a.shape
    flat = y_a.reshape(-1, shape[-1])
    window = torch.hann_window(n_fft, device=y_a.device, dtype=y_a.dtype)
    spec = torch.stft(
        flat, n_fft, hop_length, window=window, center=True,
        pad_mode="reflect", return_complex=True,
    )
    spec = spec * ratio.to(device=y_a.device, dtype=y_a.dtype)[:, None]
    out = torch.istft(spec, n_fft, hop_length, window=window, length=shape[-1])
    return out.reshape(shape)


# ------------------------------ steps of augment_manifest


def _checked_counts(methods, copies, num_workers):
    """Check the methods and worker count; return copies per method."""
    if int(num_workers) < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or len(set(methods)) != len(methods):
        raise ValueError(
            f"methods must be distinct names from {METHODS}, got {methods}"
        )
    return _copies_per_method(copies, methods)


def _copies_per_method(copies, methods):
    """Expand ``copies`` (int or {method: int}) to a dict over methods."""
    if isinstance(copies, int):
        counts = {m: copies for m in methods}
    else:
        unknown = set(copies) - set(methods)
        if unknown:
            raise ValueError(
                f"copies names methods not asked for: {sorted(unknown)}"
            )
        counts = {m: int(copies.get(m, 0)) for m in methods}
    for method, count in counts.items():
        if count < 0:
            raise ValueError(f"copies for {method!r} must be >= 0")
    return counts


def _file_sha256(path):
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _audio_folder(out_folder, options):
    """Return ``out_folder/audio_<options hash>``, the run's wav folder.

    Outputs of different options live in different folders, so a resumed
    run can trust every wav it finds in its own folder.
    """
    options_hash = hashlib.sha256(
        json.dumps(options, sort_keys=True).encode("utf-8")
    ).hexdigest()[:12]
    return os.path.join(out_folder, f"audio_{options_hash}")


def _is_complete(manifest_path, options_path, options):
    """Tell whether a finished run with the same options is on disk."""
    if not (os.path.isfile(manifest_path) and os.path.isfile(options_path)):
        return False
    try:
        with open(options_path, encoding="utf-8") as f:
            stored = json.load(f)
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    if stored != options:
        return False
    return all(os.path.isfile(e["wav"]) for e in manifest.values())


@contextlib.contextmanager
def _naming_entry(entry_id):
    """Add the manifest entry to an ``AudioFileError`` raised inside."""
    try:
        yield
    except AudioFileError as e:
        raise AudioFileError(
            e.path, f"{e.reason} (manifest entry {entry_id!r})"
        ) from e


def _check_sources(entries):
    """Read every source header: a bad file fails before any work."""
    for entry_id, entry in entries.items():
        with _naming_entry(entry_id):
            audio_info(entry["wav"])


def _device_responses(entries, audio_dir, reference_device, n_fft, rate):
    """Estimate (or reload from ``audio_dir``) the device responses."""
    path = os.path.join(audio_dir, "device_responses.pt")
    if os.path.isfile(path):
        return torch.load(path)
    responses = estimate_device_responses(
        entries, reference_device, n_fft=n_fft, sample_rate=rate
    )
    if not responses:
        raise ValueError(
            "spectrum correction needs time-aligned pairs of the reference "
            f"device {reference_device!r} and another device in the "
            "training manifest; none found (drop 'spectrum' from methods)"
        )
    tmp = path + ".tmp"
    torch.save(responses, tmp)
    os.replace(tmp, path)
    return responses


def _plan_clips(state, audio_dir):
    """List every clip of the run and those still to write.

    Returns ``planned``, ``(out_id, method, source_id, path, params,
    sources)`` of every clip, and ``todo``, the ``(method, source_id,
    copy, path)`` jobs of the clips whose wav is not on disk yet. A clip
    without a mixing partner is left out of both.
    """
    options = state["options"]
    jobs = _plan_jobs(
        state["entries"], options["methods"], options["copies"],
        options["reference_device"],
    )
    planned = []
    todo = []
    for method, source_id, copy in jobs:
        out_id = f"{source_id}_{method}{copy}"
        path = os.path.join(audio_dir, out_id + ".wav")
        # All random draws happen before any audio is read, so the
        # manifest entry is known without computing the clip; the worker
        # that computes it replays the same draws from the same stream.
        generator = _clip_generator(options["seed"], method, source_id, copy)
        params, sources = _draw_params(
            method, source_id, generator, options, state["partners"],
            state["responses"],
        )
        if params is None:
            continue
        planned.append((out_id, method, source_id, path, params, sources))
        if not os.path.isfile(path):
            todo.append((method, source_id, copy, path))
    return planned, todo


def _augmented_entries(planned, entries, n_samples, sample_rate):
    """Return the ``augmented.json`` entries of the ``planned`` clips.

    ``n_samples`` holds the lengths of the clips written by this run; the
    others (written before a resume) are read from their headers.
    """
    out = {}
    for out_id, method, source_id, path, params, sources in planned:
        if path not in n_samples:
            n_samples[path] = audio_info(path).frames
        entry = dict(entries[source_id])
        entry.update(
            wav=path,
            duration=n_samples[path] / sample_rate,
            augmentation=method,
            source=sources,
            params=params,
        )
        if method == "spectrum":
            entry["device"] = params["device"]
        out[out_id] = entry
    return out


# ------------------------------ random draws


def _uniform(low, high, generator):
    """Draw one float from U(low, high) with ``generator``."""
    u = torch.rand((), generator=generator, dtype=torch.float64).item()
    return low + (high - low) * u


def _clip_generator(seed, *parts):
    """Return a generator seeded from ``seed`` and the clip's identity.

    Each output clip gets its own stream, so its content does not depend
    on the order of processing, on resuming, or on which other methods or
    copies are asked for. Python's ``hash`` is salted per process, hence
    sha256.
    """
    text = "|".join(str(p) for p in (seed, *parts))
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    value = int.from_bytes(digest[:8], "little") & (2**63 - 1)
    return torch.Generator().manual_seed(value)


def _plan_jobs(entries, methods, counts, reference_device):
    """List ``(method, source_id, copy)`` of every clip to write."""
    jobs = []
    for method in methods:
        for source_id, entry in entries.items():
            if method == "spectrum" and entry["device"] != reference_device:
                continue
            jobs.extend((method, source_id, k) for k in range(counts[method]))
    return jobs


def _mix_partners(entries):
    """Map each id to its candidate mixing partners (same scene).

    Parallel recordings of the same segment are the same sound on another
    device, so they are used only when a scene has nothing else.
    """
    by_scene = defaultdict(list)
    for entry_id, entry in entries.items():
        by_scene[entry["scene"]].append(entry_id)
    partners = {}
    for entry_id, entry in entries.items():
        key = recording_key(entry_id, entry)
        same = [i for i in by_scene[entry["scene"]] if i != entry_id]
        other = [
            i for i in same
            if key is None or recording_key(i, entries[i]) != key
        ]
        partners[entry_id] = other or same
    return partners


def _draw_params(method, source_id, generator, options, partners, responses):
    """Draw one clip's random parameters; returns (params, source ids)."""
    if method == "mix":
        candidates = partners[source_id]
        if not candidates:
            logger.warning("No same-scene partner to mix %s with", source_id)
            return None, None
        index = int(torch.randint(len(candidates), (), generator=generator))
        gains = [
            _uniform(*options["mix_gain_range"], generator) for _ in range(2)
        ]
        return {"gains": gains}, [source_id, candidates[index]]
    if method == "pitch":
        steps = _uniform(*options["pitch_range"], generator)
        return {"n_steps": steps}, [source_id]
    if method == "stretch":
        rate = _uniform(*options["stretch_range"], generator)
        return {"rate": rate}, [source_id]
    if method == "noise":
        snr = _uniform(*options["snr_range_db"], generator)
        return {"snr_db": snr, "kind": options["noise_kind"]}, [source_id]
    devices = sorted(responses)
    index = int(torch.randint(len(devices), (), generator=generator))
    return {"device": devices[index]}, [source_id]


# ------------------------------ computing and writing clips


def _load_source(entry_id, entries, sample_rate):
    """Load a source clip; errors name the file and the manifest entry."""
    with _naming_entry(entry_id):
        return load_audio(entries[entry_id]["wav"], sample_rate=sample_rate)


def _augment_clip(method, sources, params, entries, generator, options,
                  responses):
    """Compute one augmented clip from its sources and drawn parameters."""
    rate = options["sample_rate"]
    n_fft = options["n_fft"]
    y = _load_source(sources[0], entries, rate)
    if method == "mix":
        y2 = _load_source(sources[1], entries, rate)
        return mix_same_class(y, y2, gains=params["gains"])
    if method == "pitch":
        return pitch_shift(y, rate, params["n_steps"], n_fft=n_fft)
    if method == "stretch":
        return time_stretch(y, params["rate"], n_fft=n_fft)
    if method == "noise":
        return add_noise(y, params["snr_db"], generator, params["kind"])
    return apply_device_response(y, responses[params["device"]], n_fft=n_fft)


def _make_clip(state, method, source_id, copy, path):
    """Compute one augmented clip and write it; return its sample count.

    The clip's generator is rebuilt from the seed and the clip's identity
    and its parameters redrawn, so the result is the same in any process
    and in any order.
    """
    options = state["options"]
    generator = _clip_generator(options["seed"], method, source_id, copy)
    params, sources = _draw_params(
        method, source_id, generator, options, state["partners"],
        state["responses"],
    )
    wav = _augment_clip(
        method, sources, params, state["entries"], generator, options,
        state["responses"],
    )
    if not torch.isfinite(wav).all():
        raise RuntimeError(
            f"{method} augmentation of {source_id!r} produced non-finite "
            "samples"
        )
    _write_wav(path, wav, options["sample_rate"], options["subtype"])
    return wav.shape[-1]


def _write_wav(path, wav, sample_rate, subtype):
    """Write a mono wav atomically, scaled down if it would clip."""
    peak = float(wav.abs().max()) if wav.numel() else 0.0
    if subtype.startswith("PCM") and peak > 1.0:
        # Integer formats clip at full scale. The front-end peak-normalises
        # every clip, so a global gain changes nothing downstream.
        wav = wav * (0.999 / peak)
    tmp = path + ".tmp"
    sf.write(tmp, wav.numpy(), sample_rate, subtype=subtype, format="WAV")
    os.replace(tmp, path)


def _remove_partial_writes(audio_dir):
    """Delete temporary files a killed run left behind (never a .wav)."""
    for name in os.listdir(audio_dir):
        if name.endswith(".wav.tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(audio_dir, name))


#: The run's shared inputs, set once per worker process.
_WORKER_STATE = None


def _init_worker(state):
    """Pool initializer: keep the shared inputs, one thread, die with parent."""
    global _WORKER_STATE
    _WORKER_STATE = state
    torch.set_num_threads(1)
    parent = os.getppid()

    def watch_parent():
        # A pool worker blocks forever on its task queue if the parent is
        # killed (kill -9): leave instead of lingering.
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch_parent, daemon=True).start()


def _worker_clip(job):
    """Pool task: one clip; errors travel back as plain values.

    ``AudioFileError`` takes two arguments and does not survive pickling,
    so it is returned as ``(path, reason)`` and raised again by the parent.
    """
    try:
        return job[3], _make_clip(_WORKER_STATE, *job), None
    except AudioFileError as e:
        return job[3], None, (e.path, e.reason)


@contextlib.contextmanager
def _single_thread():
    """Run torch with one intra-op thread inside the block.

    Parallel reductions sum in an order that depends on the thread count;
    one thread everywhere keeps outputs identical for any ``num_workers``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _progress_bar(total, done, progress):
    """Return a tqdm bar (or a no-op stand-in) over all planned clips."""
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm comes with speechbrain; be safe anyway
        progress = False
    if not progress:
        return contextlib.nullcontext(_NoBar())
    return tqdm(
        total=total, initial=done, unit="clip", desc="augment",
        dynamic_ncols=True,
    )


class _NoBar:
    """Stand-in for a disabled progress bar."""

    def update(self, n=1):
        """Do nothing."""


def _write_clips(todo, state, num_workers, total, progress):
    """Compute and write the clips of ``todo``; return ``{path: samples}``.

    With ``num_workers > 1`` the clips are spread over a pool of worker
    processes, forked where the platform can (as torch's DataLoader does:
    no re-import of the caller's main script, no start-up cost). Each
    worker sets one torch thread first, which also keeps a forked copy of
    the parent's OpenMP pool from being used.
    """
    n_samples = {}
    done_before = total - len(todo)
    with _progress_bar(total, done_before, progress) as bar:

        def finished(path, count):
            n_samples[path] = count
            bar.update(1)
            if len(n_samples) % 1000 == 0:
                logger.info(
                    "Augmented %d / %d clips",
                    done_before + len(n_samples), total,
                )

        if num_workers <= 1 or len(todo) <= 1:
            with _single_thread():
                for job in todo:
                    finished(job[3], _make_clip(state, *job))
            return n_samples
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context(
            "fork" if "fork" in methods else "spawn"
        )
        with ProcessPoolExecutor(
            max_workers=min(num_workers, len(todo)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(state,),
        ) as pool:
            futures = [pool.submit(_worker_clip, job) for job in todo]
            try:
                for future in as_completed(futures):
                    path, count, error = future.result()
                    if error is not None:
                        raise AudioFileError(*error)
                    finished(path, count)
            except BaseException:
                # Finished clips stay on disk for the next run.
                for future in futures:
                    future.cancel()
                raise
    return n_samples


# ------------------------------ command line


def _method_copies(text):
    """Parse ``METHOD=N`` of ``--method_copies``."""
    method, sep, count = text.partition("=")
    if not sep or method not in METHODS or not count.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected METHOD=N with METHOD in {METHODS}, got {text!r}"
        )
    return method, int(count)


def parse_args(argv=None):
    """Parse the command line.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    argparse.Namespace
        Parsed options.

    Example
    -------
    >>> args = parse_args(["--train_manifest", "t.json", "--out_folder", "o",
    ...                    "--method-copies", "pitch=2", "--num_workers", "2"])
    >>> args.copies, args.method_copies, args.num_workers, args.no_progress
    (1, [('pitch', 2)], 2, False)
    """
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--train_manifest", required=True,
        help="training manifest (JSON); the only data that is read",
    )
    parser.add_argument(
        "--out_folder", required=True,
        help="folder of the augmented wavs and augmented.json",
    )
    parser.add_argument(
        "--copies", type=int, default=1,
        help="augmented clips per source clip and method",
    )
    parser.add_argument(
        "--method_copies", type=_method_copies, action="append", default=[],
        metavar="METHOD=N", help="override --copies for one method",
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS),
        help="augmentations to apply",
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--sample_rate", type=int, default=44100)
    parser.add_argument(
        "--n_fft", type=int, default=2048,
        help="STFT size of pitch shift, time stretch, spectrum correction",
    )
    parser.add_argument(
        "--noise_kind", choices=("white", "pink"), default="white"
    )
    parser.add_argument(
        "--snr_range_db", type=float, nargs=2, default=(10.0, 30.0),
        metavar=("LOW", "HIGH"),
    )
    parser.add_argument(
        "--subtype", default="PCM_16",
        help="sample format of the written wavs (PCM_16, PCM_24, FLOAT)",
    )
    parser.add_argument(
        "--merged_manifest", default=None,
        help="also write train + augmented entries to this manifest",
    )
    parser.add_argument(
        "--num_workers", type=int, default=1,
        help="processes computing clips (the output does not depend on it)",
    )
    parser.add_argument(
        "--no_progress", action="store_true",
        help="no progress bar (there is none when stderr is not a terminal)",
    )
    args = parser.parse_args(argv)
    if args.num_workers < 1:
        parser.error("--num_workers must be at least 1")
    for method, _ in args.method_copies:
        if method not in args.methods:
            parser.error(f"--method_copies names {method!r}, not in --methods")
    return args


def main(argv=None):
    """Run the augmentation from the command line.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    str
        Path of the written ``augmented.json``.

    Example
    -------
    >>> main(["--help"])  # doctest: +SKIP
    """
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    copies = args.copies
    if args.method_copies:
        copies = {m: args.copies for m in args.methods}
        copies.update(dict(args.method_copies))
    out = augment_manifest(
        args.train_manifest,
        args.out_folder,
        sample_rate=args.sample_rate,
        copies=copies,
        methods=args.methods,
        seed=args.seed,
        snr_range_db=tuple(args.snr_range_db),
        noise_kind=args.noise_kind,
        n_fft=args.n_fft,
        subtype=args.subtype,
        num_workers=args.num_workers,
        progress=False if args.no_progress else None,
    )
    print(out)
    if args.merged_manifest:
        merged = merge_manifests(
            [args.train_manifest, out], args.merged_manifest
        )
        print(f"{args.merged_manifest} ({len(merged)} clips)")
    return out


if __name__ == "__main__":
    # Bad input (a missing or unreadable source file, a bad option value)
    # ends in one line, not a traceback.
    run_main(main, user_errors=(AudioFileError, ValueError))
