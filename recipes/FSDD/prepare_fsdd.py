"""Prepare SpeechBrain JSON manifests for the Free Spoken Digit Dataset.

The Free Spoken Digit Dataset (FSDD; public repository
Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0) is laid out as::

    fsdd/recordings/{digit}_{speaker}_{take}.wav    e.g. 7_jackson_32.wav
    fsdd/metadata.py                                 speaker metadata

3,000 clips of the digits 0-9 spoken by six speakers (50 takes of each
digit each), mono, 8 kHz, 16-bit PCM, 0.14 to 2.3 s. Speakers are
discovered from the file names, so a copy with other speakers works too.

Splits
------
``split="speaker"`` (leave one speaker out, the recipe's cross-validation
fold): the test split is every clip of ``test_speaker``, the validation
split every clip of ``valid_speakers`` (by default the speaker after the
test speaker in the sorted speaker list, cyclically), the training split
the other speakers. Test, validation and training speakers are disjoint.

``split="official"`` (the dataset's own split): takes 0-4 of every speaker
and digit are the test split; of the dataset's training takes, 5-9 are the
validation split and 10 and above the training split.

Loud errors
-----------
A missing folder, a folder without recordings, ``.wav`` files whose name is
not ``{digit}_{speaker}_{take}.wav`` (other files, e.g. a README, are
ignored), two files with the same digit, speaker and take, unreadable or
corrupt audio, a sample rate other than 8 kHz, more than one channel,
clips that are empty or shorter than ``min_duration``, with
``check_audio="full"`` also NaN, infinite or all-zero samples, unknown or
overlapping test/validation speakers and an empty split are all collected
and raised as ONE :class:`FSDDError` that lists every file and its reason.
No file is ever skipped silently.

Manifests
---------
``train.json``, ``valid.json`` and ``test.json`` in ``save_folder``, keyed
by the file stem (``"7_jackson_32"``), each entry::

    {"wav": <absolute path>, "duration": <s>, "digit": "7",
     "speaker": "jackson", "take": 32}

The options and a fingerprint of the recordings (names, sizes and
modification times of the ``.wav`` files) are stored next to them in
``prepare_options.json``; a later call with the same options on
unchanged recordings reuses the manifests, anything else re-prepares them.

Audio policy
------------
The recipe's data pipeline reads clips with the yaml's ``clip_policy``
(:class:`speechbrain_relevance.pipeline.ClipPolicy`, the one inference
uses): at 8 kHz (strict: another rate or more channels is an error, never
a silent conversion), peak-normalised, cropped to ``max_duration``, never
padded. :func:`load_fsdd_clip` is the same policy as a function (padding
to a fixed duration, 1 s by default, unless ``pad=False``).

Usage::

    python prepare_fsdd.py --data_folder /data/fsdd --save_folder prep
        [--split official] [--test_speaker theo] [--valid_speakers lucas]

(one command line).

Authors
 * speechbrain-relevance developers
"""

import hashlib
import logging
import numbers
import os
import re

from speechbrain_relevance.cli import ArgumentParser, run_main
from speechbrain_relevance.data.audio import audio_info, load_audio
from speechbrain_relevance.data.preparation import (
    SPLITS,
    PreparationError,
    header_problems,
    manifest_paths,
    read_json,
    up_to_date,
    write_json,
    write_manifests,
)
from speechbrain_relevance.errors import AudioFileError, ConfigError
from speechbrain_relevance.pipeline import ClipPolicy

logger = logging.getLogger(__name__)

#: Folder of the Free Spoken Digit Dataset (FSDD) that holds the clips,
#: named ``{digit}_{speaker}_{take}.wav``.
FSDD_RECORDINGS_DIRNAME = "recordings"

#: The six speakers of the FSDD release, sorted (more may be added; the
#: data preparation discovers the speakers from the file names).
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")

#: The ten class labels: the spoken digits, as strings.
FSDD_DIGITS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")

#: Every FSDD clip is mono 16-bit PCM at this rate.
FSDD_SAMPLE_RATE = 8000

#: Takes of every speaker and digit in the official test split (the
#: dataset's README); the recipe carves its validation split from takes
#: 5-9 and trains on takes 10 and above.
FSDD_OFFICIAL_TEST_TAKES = (0, 1, 2, 3, 4)
FSDD_OFFICIAL_VALID_TAKES = (5, 6, 7, 8, 9)

SPLIT_MODES = ("speaker", "official")
CHECK_MODES = ("header", "full")
SAMPLE_RATE = FSDD_SAMPLE_RATE
CLIP_SECONDS = 1.0
#: Bumped when the manifests' content changes, so old ones are redone.
_FORMAT_VERSION = 1

_NAME = re.compile(r"^(\d+)_([A-Za-z][A-Za-z0-9]*)_(\d+)\.wav$")


class FSDDError(PreparationError):
    """The FSDD copy cannot be prepared as asked.

    Arguments
    ---------
    problems : list of (str, str)
        ``(path, reason)`` for every problem found.

    Example
    -------
    >>> e = FSDDError([("a.wav", "bad"), ("b.wav", "worse")])
    >>> print(e)
    2 problem(s) preparing FSDD:
      a.wav: bad
      b.wav: worse
    >>> e.summary()
    '2 problem(s) preparing FSDD: a.wav: bad; b.wav: worse'
    """

    dataset = "FSDD"

    def __init__(self, problems):
        super().__init__(problems)


def load_fsdd_clip(path, sample_rate=SAMPLE_RATE, duration=CLIP_SECONDS,
                   pad=True):
    """Load a clip with the recipe's audio policy.

    Read with ``load_audio(path, sample_rate, strict=True)`` (a file at
    another rate or with several channels is an error), peak-normalised
    (``x / (max|x| + 1e-4)``), then cropped to ``duration`` seconds and,
    with ``pad``, zero-padded at the end to exactly that length. The
    recipe loads with ``pad=False``: SpeechBrain's batching pads each batch
    to its longest clip and passes the relative lengths on, so short
    clips cost less and the front-end and classifier know where each
    clip ends.

    Arguments
    ---------
    path : str
        Audio file.
    sample_rate : int
        Expected rate of the file (FSDD: 8000).
    duration : float
        Output length (``pad``) or longest length in seconds.
    pad : bool
        Pad shorter clips to ``duration``.

    Returns
    -------
    torch.Tensor
        ``[samples]`` float32, ``round(sample_rate * duration)`` samples
        with ``pad``, at most that many without.

    Raises
    ------
    speechbrain_relevance.errors.AudioFileError
        If the file is missing, unreadable, holds NaN or infinite samples,
        or has another rate or several channels.

    Example
    -------
    >>> import tempfile, numpy, soundfile
    >>> path = tempfile.mkstemp(suffix=".wav")[1]
    >>> soundfile.write(path, numpy.full(4000, 0.25), 8000)
    >>> wav = load_fsdd_clip(path)
    >>> wav.shape, round(float(wav.max()), 3), float(wav[4000:].abs().max())
    (torch.Size([8000]), 1.0, 0.0)
    >>> load_fsdd_clip(path, duration=0.25, pad=False).shape
    torch.Size([2000])
    >>> load_fsdd_clip(path, pad=False).shape
    torch.Size([4000])
    """
    # The recipe's own clip policy object (the yaml's ``clip_policy``
    # with max_duration), as a function.
    if pad:
        policy = ClipPolicy(sample_rate, clip_duration=duration)
    else:
        policy = ClipPolicy(sample_rate, max_duration=duration)
    return policy.load(path, strict=True)


def find_recordings(data_folder):
    """Return the folder holding the recordings.

    Arguments
    ---------
    data_folder : str
        The FSDD folder (holding ``recordings/``) or ``recordings/`` itself.

    Returns
    -------
    str
        Absolute path of the recordings folder.

    Raises
    ------
    FSDDError
        If ``data_folder`` does not exist or is not a folder.

    Example
    -------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "recordings"))
    >>> find_recordings(root) == find_recordings(
    ...     os.path.join(root, "recordings"))
    True
    """
    folder = os.path.abspath(data_folder)
    if not os.path.isdir(folder):
        reason = "not a folder" if os.path.exists(folder) else "not found"
        raise FSDDError([(folder, f"data folder {reason}")])
    inner = os.path.join(folder, FSDD_RECORDINGS_DIRNAME)
    return inner if os.path.isdir(inner) else folder


def parse_name(name):
    """Split a recording's file name into digit, speaker and take.

    Arguments
    ---------
    name : str
        File name, e.g. ``"7_jackson_32.wav"``.

    Returns
    -------
    tuple
        ``(digit, speaker, take)``: ``(str, str, int)``.

    Raises
    ------
    ValueError
        With the reason, if the name does not follow the layout.

    Example
    -------
    >>> parse_name("7_jackson_32.wav")
    ('7', 'jackson', 32)
    >>> parse_name("12_jackson_3.wav")
    Traceback (most recent call last):
    ...
    ValueError: digit '12' is not one of 0-9
    """
    match = _NAME.match(name)
    if match is None:
        raise ValueError(
            "file name is not {digit}_{speaker}_{take}.wav (digit 0-9, "
            "speaker letters and digits starting with a letter, take a "
            "number)"
        )
    digit, speaker, take = match.groups()
    if digit not in FSDD_DIGITS:
        raise ValueError(
            f"digit {digit!r} is not one of {FSDD_DIGITS[0]}-"
            f"{FSDD_DIGITS[-1]}"
        )
    return digit, speaker, int(take)


def _scan(recordings):
    """List ``(name, path, size, mtime_ns, is_file)`` of the .wav entries."""
    entries = []
    with os.scandir(recordings) as it:
        for entry in it:
            if not entry.name.lower().endswith(".wav"):
                continue  # README, metadata.py, ...: not recordings
            try:
                st = entry.stat()
                is_file = entry.is_file()
                size, mtime = st.st_size, st.st_mtime_ns
            except OSError:  # e.g. a broken link
                size, mtime, is_file = -1, -1, False
            entries.append((entry.name, entry.path, size, mtime, is_file))
    return sorted(entries)


def _fingerprint(entries):
    """Hash the names, sizes and modification times of the recordings."""
    digest = hashlib.sha256()
    for name, _, size, mtime, _ in entries:
        digest.update(f"{name}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def _as_speaker_list(name, value):
    """Return None, or ``value`` (a str or strs) as a list of str."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    out = list(value)
    for v in out:
        if not isinstance(v, str):
            raise ConfigError(f"{name}: {v!r} is not a speaker name (str)")
    return out


def assign_speakers(speakers, test_speaker=None, valid_speakers=None):
    """Choose the test, validation and training speakers of a fold.

    Arguments
    ---------
    speakers : list of str
        The speakers found.
    test_speaker : str, optional
        The held-out test speaker (default: the first, sorted).
    valid_speakers : list of str, optional
        Validation speakers (default: the speaker after the test speaker in
        the sorted list, cyclically).

    Returns
    -------
    dict
        Split name to sorted speakers.

    Raises
    ------
    FSDDError
        For unknown or overlapping speakers, naming the known ones.

    Example
    -------
    >>> assign_speakers(["ann", "bob", "cy"], "cy")
    {'train': ['bob'], 'valid': ['ann'], 'test': ['cy']}
    >>> try:
    ...     assign_speakers(["ann", "bob"], "eve")
    ... except FSDDError as e:
    ...     print(e.problems)
    [('test_speaker', "unknown speaker 'eve'; the speakers are ann, bob")]
    """
    speakers = sorted(set(speakers))
    known = ", ".join(speakers) or "(none)"
    problems = []
    if test_speaker is None:
        test_speaker = speakers[0] if speakers else None
        logger.info("No test speaker given; holding out %s", test_speaker)
    if test_speaker not in speakers:
        problems.append(
            ("test_speaker",
             f"unknown speaker {test_speaker!r}; the speakers are {known}")
        )
    if valid_speakers is None:
        valid_speakers = []
        if test_speaker in speakers and len(speakers) > 1:
            i = speakers.index(test_speaker)
            valid_speakers = [speakers[(i + 1) % len(speakers)]]
    for speaker in valid_speakers:
        if speaker not in speakers:
            problems.append(
                ("valid_speakers",
                 f"unknown speaker {speaker!r}; the speakers are {known}")
            )
        elif speaker == test_speaker:
            problems.append(
                ("valid_speakers",
                 f"{speaker!r} is also the test speaker; test and "
                 "validation speakers must be disjoint")
            )
    if len(set(valid_speakers)) != len(valid_speakers):
        problems.append(
            ("valid_speakers",
             f"a speaker is listed twice: {', '.join(valid_speakers)}")
        )
    if problems:
        raise FSDDError(problems)
    held = {test_speaker, *valid_speakers}
    return {
        "train": [s for s in speakers if s not in held],
        "valid": sorted(valid_speakers),
        "test": [test_speaker],
    }


def _official_split(take):
    """Split of a take in the official split."""
    if take in FSDD_OFFICIAL_TEST_TAKES:
        return "test"
    if take in FSDD_OFFICIAL_VALID_TAKES:
        return "valid"
    return "train"


def _check_audio(path, check_audio, min_duration):
    """Read one recording's header (and samples); return (info, reasons)."""
    try:
        info = audio_info(path)
    except AudioFileError as e:
        return None, [e.reason]
    reasons = header_problems(info, SAMPLE_RATE)
    if info.duration < min_duration:
        reasons.append(
            f"{info.duration:.4f} s long, shorter than min_duration "
            f"{min_duration} s"
        )
    if reasons or check_audio != "full":
        return info, reasons
    try:
        wav = load_audio(path, sample_rate=SAMPLE_RATE, strict=True)
    except AudioFileError as e:
        return info, [e.reason]
    if not bool(wav.abs().max() > 0):
        reasons.append("audio is all zeros (silence)")
    return info, reasons


def prepare_fsdd(
    data_folder,
    save_folder,
    split="speaker",
    test_speaker=None,
    valid_speakers=None,
    check_audio="header",
    min_duration=0.05,
    check_cache=None,
):
    """Write ``train.json``, ``valid.json`` and ``test.json`` manifests.

    Arguments
    ---------
    data_folder : str
        The FSDD folder or its ``recordings/`` folder.
    save_folder : str
        Where the manifests (and the options used) are written.
    split : str
        ``"speaker"`` (hold out ``test_speaker``, validate on
        ``valid_speakers``, train on the others) or ``"official"`` (takes
        0-4 test, 5-9 validation, 10 and above training).
    test_speaker : str, optional
        The test speaker of ``split="speaker"`` (default: the first in the
        sorted speaker list).
    valid_speakers : str or list of str, optional
        The validation speakers of ``split="speaker"`` (default: the
        speaker after the test speaker in the sorted list, cyclically).
    check_audio : str
        ``"header"`` reads each header (fast: catches unreadable, empty,
        short, non-8 kHz and non-mono files); ``"full"`` also decodes the
        samples (catches undecodable data, NaN, infinite or all-zero
        audio).
    min_duration : float
        Shortest accepted clip, in seconds (the shortest real one is
        0.14 s).
    check_cache : str, optional
        A JSON file shared by preparations of the same recordings (the
        folds of one cross-validation): after a check that found no
        problem the clips' durations are stored there, and a later call
        whose recordings (every name, size and modification time),
        ``check_audio`` and ``min_duration`` are the same takes them
        instead of reading every file again. None: always read.

    Returns
    -------
    dict
        Split name to manifest path.

    Raises
    ------
    speechbrain_relevance.errors.ConfigError
        (a ValueError) If the options themselves are invalid.
    FSDDError
        (a ValueError) listing every problem with the data or the speakers.

    Example
    -------
    >>> import json, os, tempfile, numpy, soundfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "recordings"))
    >>> for name in ("ann", "bob", "cy"):
    ...     for take in range(2):
    ...         soundfile.write(os.path.join(
    ...             root, "recordings", f"3_{name}_{take}.wav"),
    ...             numpy.full(800, 0.1), 8000, subtype="PCM_16")
    >>> paths = prepare_fsdd(root, os.path.join(root, "prep"),
    ...                      test_speaker="bob")
    >>> with open(paths["test"]) as f:
    ...     test = json.load(f)
    >>> sorted(test), test["3_bob_1"]["take"], test["3_bob_1"]["duration"]
    (['3_bob_0', '3_bob_1'], 1, 0.1)
    """
    valid_speakers = _check_options(
        split, test_speaker, valid_speakers, check_audio, min_duration
    )
    recordings = find_recordings(data_folder)
    entries = _scan(recordings)
    if not entries:
        raise FSDDError([(
            recordings,
            "no recordings: no {digit}_{speaker}_{take}.wav files in it (or "
            f"in its {FSDD_RECORDINGS_DIRNAME}/ subfolder)",
        )])
    save_folder = os.path.abspath(save_folder)
    os.makedirs(save_folder, exist_ok=True)
    paths = manifest_paths(save_folder)
    options = {
        "version": _FORMAT_VERSION,
        "recordings": os.path.realpath(recordings),
        "split": split,
        "test_speaker": test_speaker,
        "valid_speakers": valid_speakers,
        "check_audio": check_audio,
        "min_duration": float(min_duration),
        "fingerprint": _fingerprint(entries),
    }
    if up_to_date(save_folder, options, paths):
        logger.info("FSDD manifests in %s are up to date; reusing them",
                    save_folder)
        return paths

    parsed, problems = _parse_names(entries)
    split_for, split_problems = _assign_splits(
        parsed, split, test_speaker, valid_speakers, recordings
    )
    check_key = {
        key: options[key]
        for key in ("version", "recordings", "check_audio", "min_duration",
                    "fingerprint")
    }
    checked = _cached_checks(check_cache, check_key)
    manifests, audio_problems, durations = _read_clips(
        parsed, split_for, check_audio, min_duration, checked
    )
    problems += split_problems + audio_problems
    if problems:
        raise FSDDError(problems)
    if check_cache is not None and checked is None:
        write_json(check_cache, {**check_key, "durations": durations})
    write_manifests(save_folder, manifests, options, paths)
    for s in SPLITS:
        logger.info("Wrote %d %s entries to %s", len(manifests[s]), s,
                    paths[s])
    return paths


def _check_options(split, test_speaker, valid_speakers, check_audio,
                   min_duration):
    """Refuse invalid options; return ``valid_speakers`` as a list."""
    if split not in SPLIT_MODES:
        raise ConfigError(f"split must be 'speaker' or 'official', got "
                          f"{split!r}")
    if check_audio not in CHECK_MODES:
        raise ConfigError(
            f"check_audio must be 'header' or 'full', got {check_audio!r}"
        )
    if (
        isinstance(min_duration, bool)
        or not isinstance(min_duration, numbers.Real)
        or not min_duration >= 0
    ):
        raise ConfigError(
            f"min_duration must be a number >= 0, got {min_duration!r}"
        )
    if test_speaker is not None and not isinstance(test_speaker, str):
        raise ConfigError(f"test_speaker {test_speaker!r} is not a str")
    valid_speakers = _as_speaker_list("valid_speakers", valid_speakers)
    if split == "official" and (
        test_speaker is not None or valid_speakers is not None
    ):
        raise ConfigError(
            "test_speaker and valid_speakers apply to split='speaker' only"
        )
    return valid_speakers


def _parse_names(entries):
    """Parse the recordings' names: ``(path, digit, speaker, take)`` each.

    Also returns the problems: entries that are not regular files, names
    off the layout, and repeated digit, speaker and take.
    """
    problems, parsed, owner = [], [], {}
    for name, path, _, _, is_file in entries:
        if not is_file:
            problems.append((path, "not a regular file"))
            continue
        try:
            digit, speaker, take = parse_name(name)
        except ValueError as e:
            problems.append((path, str(e)))
            continue
        key = (digit, speaker, take)
        if key in owner:
            problems.append((
                path,
                f"same digit, speaker and take as {owner[key]}",
            ))
            continue
        owner[key] = name
        parsed.append((path, digit, speaker, take))
    return parsed, problems


def _assign_splits(parsed, split, test_speaker, valid_speakers, recordings):
    """Map each recording's path to its split.

    Returns the mapping (None when no split could be chosen: no valid
    file name at all, every file then already reported, or bad speakers)
    and the problems: unknown speakers, splits left empty.
    """
    speakers = sorted({speaker for _, _, speaker, _ in parsed})
    extra = [s for s in speakers if s not in FSDD_SPEAKERS]
    if extra:
        logger.info("Speakers beyond the %d of the FSDD release: %s",
                    len(FSDD_SPEAKERS), ", ".join(extra))
    if not parsed:
        return None, []
    if split == "official":
        split_for = {p[0]: _official_split(p[3]) for p in parsed}
        what = {"test": "takes 0-4", "valid": "takes 5-9",
                "train": "takes 10 and above"}
    else:
        try:
            chosen = assign_speakers(speakers, test_speaker, valid_speakers)
        except FSDDError as e:
            return None, list(e.problems)
        by_speaker = {s: k for k, ss in chosen.items() for s in ss}
        split_for = {p[0]: by_speaker[p[2]] for p in parsed}
        logger.info("Speakers: test %s, valid %s, train %s",
                    chosen["test"], chosen["valid"], chosen["train"])
        what = {
            s: f"speakers: {', '.join(chosen[s]) or 'none'}" for s in SPLITS
        }
    problems = [
        (recordings, f"split {s} ({what[s]}) would be empty")
        for s in SPLITS
        if s not in split_for.values()
    ]
    return split_for, problems


def _cached_checks(check_cache, check_key):
    """Durations by file name from ``check_cache`` if it fits, else None."""
    if check_cache is None:
        return None
    stored = read_json(check_cache)
    if not isinstance(stored, dict) or not isinstance(
        stored.get("durations"), dict
    ):
        return None
    if any(stored.get(key) != value for key, value in check_key.items()):
        return None
    logger.info("Audio checked before with the same recordings and "
                "options (%s); not read again", check_cache)
    return stored["durations"]


def _read_clips(parsed, split_for, check_audio, min_duration, checked=None):
    """Check every recording's audio; fill the manifests of its split.

    ``checked`` (file name -> duration) replaces the check of the clips
    it holds. Returns the manifests, the problems and every clip's
    duration by file name.
    """
    manifests = {s: {} for s in SPLITS}
    problems = []
    durations = {}
    order = sorted(parsed, key=lambda p: (p[2], int(p[1]), p[3]))
    for path, digit, speaker, take in order:
        name = os.path.basename(path)
        if checked is not None and name in checked:
            duration = checked[name]
        else:
            info, reasons = _check_audio(path, check_audio, min_duration)
            if reasons:
                problems.extend((path, r) for r in reasons)
                continue
            duration = info.duration
        durations[name] = duration
        if split_for is None:
            continue
        manifests[split_for[path]][os.path.splitext(name)[0]] = {
            "wav": os.path.abspath(path),
            "duration": duration,
            "digit": digit,
            "speaker": speaker,
            "take": take,
        }
    return manifests, problems, durations


def main(argv=None):
    """Command-line entry point (``--help`` lists the options).

    Bad input (a missing folder, bad files, unknown speakers, options that
    do not go together) ends in one ``error:`` message and exit status 1
    through :func:`speechbrain_relevance.cli.run_main`, as for every
    script of the project; a malformed command line in argparse's usage
    message and status 2.

    Arguments
    ---------
    argv : list of str, optional
        Arguments; ``sys.argv[1:]`` if None.

    Returns
    -------
    dict
        Split name to manifest path.
    """
    parser = ArgumentParser(
        description="Write SpeechBrain manifests (train/valid/test.json) "
        "for the Free Spoken Digit Dataset."
    )
    parser.add_argument("--data_folder", required=True,
                        help="the FSDD folder or its recordings/ folder")
    parser.add_argument("--save_folder", required=True)
    parser.add_argument("--split", choices=SPLIT_MODES, default="speaker",
                        help="leave one speaker out (default) or the "
                             "dataset's official split (takes 0-4 test)")
    parser.add_argument("--test_speaker", default=None,
                        help="held-out speaker of --split speaker "
                             "(default: the first, sorted)")
    parser.add_argument("--valid_speakers", nargs="+", default=None,
                        help="validation speakers of --split speaker "
                             "(default: the one after the test speaker)")
    parser.add_argument("--check_audio", choices=CHECK_MODES,
                        default="full")
    parser.add_argument("--min_duration", type=float, default=0.05,
                        help="shortest accepted clip in seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(levelname)s %(message)s")
    paths = prepare_fsdd(
        args.data_folder, args.save_folder, split=args.split,
        test_speaker=args.test_speaker,
        valid_speakers=args.valid_speakers,
        check_audio=args.check_audio, min_duration=args.min_duration,
    )
    for split, path in paths.items():
        print(f"{split}: {path}")
    return paths


if __name__ == "__main__":
    run_main(main)
