"""Prepare SpeechBrain JSON manifests for UrbanSound8K, loudly.

The corpus (https://urbansounddataset.weebly.com/urbansound8k.html) is laid
out as::

    UrbanSound8K/audio/fold1 ... fold10/<fsID>-<classID>-<occ>-<slice>.wav
    UrbanSound8K/metadata/UrbanSound8K.csv

with the csv header ``slice_file_name,fsID,start,end,salience,fold,classID,
class``. The authors' protocol is 10-fold cross-validation on the
predefined folds: slices of one Freesound recording share a fold, so
reshuffling leaks recordings between train and test. This module therefore
only ever selects whole folds.

Why not SpeechBrain's own preparation
-------------------------------------
The UrbanSound8k recipe shipped with SpeechBrain reads every header with a
torchaudio function that current torchaudio (2.11 here) no longer has,
inside a broad ``except`` that just skips the file. So every file is
"skipped" and it writes EMPTY manifests without an error. Here headers are
read with ``soundfile`` (via :mod:`speechbrain_relevance.data.audio`), and:

* a requested split that would be empty is an error, never an empty file;
* missing files, unreadable or corrupt audio, a missing or malformed
  metadata csv, class names that disagree with ``classID``, file names
  whose fsID or classID disagree with their row, and csv folds that
  disagree with the folder holding the file are all collected and raised as
  ONE :class:`UrbanSound8KError` listing every file and its reason;
  ``skip_bad_files=True`` instead skips each bad file with a logged warning
  naming it;
* re-running with the same arguments reuses the manifests (the options are
  stored next to them), but only if they exist and are non-empty.

Manifests
---------
``train.json``, ``valid.json`` and ``test.json`` in ``save_folder``, keyed
by the file stem (e.g. ``"100032-3-0-0"``), each entry::

    {"wav": <absolute path>, "duration": <s>, "class": "dog_bark",
     "class_id": 3, "fold": 5, "fsID": "100032", "salience": 1,
     "sample_rate": 44100, "channels": 2}

``duration``, ``sample_rate`` and ``channels`` come from the file header,
the rest from the metadata csv.

Audio policy
------------
Clips are stored at their original rates (8-96 kHz), mono or stereo, 8-32
bit. At load time (the yaml's ``clip_policy``, a
:class:`speechbrain_relevance.pipeline.ClipPolicy`; :func:`load_urbansound_clip`
is the same as a function) each clip is read with
``load_audio(path, sample_rate=44100)`` -- resampled with torchaudio,
stereo downmixed by averaging the channels -- then peak-normalised
(``x / (max|x| + 1e-4)``) and zero-padded at the end (or cropped) to
exactly 4 s, i.e. 176,400 samples.

Usage::

    python prepare_urbansound8k.py --data_folder /data/UrbanSound8K
        --save_folder results/prep --train_folds 1 2 3 4 5 6 7 8
        --valid_folds 9 --test_folds 10

(one command line).

Authors
 * speechbrain-relevance developers
"""

import csv
import logging
import numbers
import os
import re
import sys

from speechbrain_relevance.cli import ArgumentParser, run_main
from speechbrain_relevance.data.audio import (
    audio_info,
    clip_length_problem,
    load_audio,
)
from speechbrain_relevance.data.preparation import (
    SPLITS,
    PreparationError,
    files_fingerprint,
    manifest_paths,
    up_to_date,
    write_manifests,
)
from speechbrain_relevance.errors import AudioFileError, ConfigError
from speechbrain_relevance.pipeline import ClipPolicy

# Recipe modules import their siblings by name, as train.py does.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

logger = logging.getLogger(__name__)

#: Folder of the UrbanSound8K dataset.
URBANSOUND_DIRNAME = "UrbanSound8K"

#: Official UrbanSound8K class names, indexed by their official classID.
URBANSOUND_CLASSES = (
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
)

#: Columns of ``metadata/UrbanSound8K.csv``, in the official order.
URBANSOUND_CSV_COLUMNS = (
    "slice_file_name",
    "fsID",
    "start",
    "end",
    "salience",
    "fold",
    "classID",
    "class",
)

#: The predefined cross-validation folds.
URBANSOUND_N_FOLDS = 10

CLASSES = URBANSOUND_CLASSES
CSV_COLUMNS = URBANSOUND_CSV_COLUMNS
N_FOLDS = URBANSOUND_N_FOLDS
SAMPLE_RATE = 44100
CLIP_SECONDS = 4.0

_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)-(\d+)\.wav$")


class UrbanSound8KError(PreparationError):
    """The UrbanSound8K copy cannot be prepared as asked.

    Arguments
    ---------
    problems : list of (str, str)
        ``(path, reason)`` for every problem found.
    hint : str
        Appended to the message (e.g. how to skip bad files).

    Example
    -------
    >>> print(UrbanSound8KError([("a.wav", "file not found")], hint="Fix."))
    1 problem(s) preparing UrbanSound8K:
      a.wav: file not found
    Fix.
    """

    dataset = "UrbanSound8K"

    def __init__(self, problems, hint=""):
        super().__init__(problems, hint=hint)


def load_urbansound_clip(path, sample_rate=SAMPLE_RATE, duration=CLIP_SECONDS):
    """Load a clip with the recipe's audio policy.

    Read at ``sample_rate`` (torchaudio resampling), downmixed to mono by
    averaging, peak-normalised, then zero-padded at the end or cropped to
    ``duration`` seconds.

    Arguments
    ---------
    path : str
        Audio file.
    sample_rate : int
        Output rate.
    duration : float
        Output length in seconds.

    Returns
    -------
    torch.Tensor
        ``[round(sample_rate * duration)]`` float32 samples.

    Raises
    ------
    speechbrain_relevance.errors.AudioFileError
        If the file is missing or unreadable.

    Example
    -------
    >>> import tempfile, numpy, soundfile
    >>> path = tempfile.mkstemp(suffix=".wav")[1]
    >>> soundfile.write(path, numpy.random.rand(8000, 2) - 0.5, 8000)
    >>> load_urbansound_clip(path).shape
    torch.Size([176400])
    """
    # The peak is taken over the whole clip, as in the reference; real
    # clips are at most 4 s, so cropping almost never happens.
    # The yaml's ``clip_policy`` (clip_duration), as a function.
    return ClipPolicy(sample_rate, clip_duration=duration).load(path)


def find_urbansound8k(data_folder):
    """Return the ``UrbanSound8K`` folder given it or its parent.

    Arguments
    ---------
    data_folder : str
        ``.../UrbanSound8K`` or the folder that holds it.

    Returns
    -------
    str
        Absolute path of the folder holding ``audio/`` and ``metadata/``.

    Raises
    ------
    UrbanSound8KError
        If neither folder looks like UrbanSound8K.

    Example
    -------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "UrbanSound8K", "audio"))
    >>> find_urbansound8k(root) == find_urbansound8k(
    ...     os.path.join(root, "UrbanSound8K"))
    True
    """
    folder = os.path.abspath(data_folder)

    def looks_like(d):
        return os.path.isdir(os.path.join(d, "audio")) or os.path.isdir(
            os.path.join(d, "metadata")
        )

    for candidate in (folder, os.path.join(folder, "UrbanSound8K")):
        if looks_like(candidate):
            return candidate
    raise UrbanSound8KError(
        [(folder, "neither it nor its UrbanSound8K/ subfolder holds "
                  "audio/ or metadata/")]
    )


def _normalize_folds(name, folds):
    """Turn ``folds`` (an int or ints) into a sorted list, or raise."""
    if isinstance(folds, (numbers.Integral, str)):
        folds = [folds]
    out = []
    for f in folds:
        # Integers, or digit strings as they come from a command line.
        if isinstance(f, numbers.Integral) and not isinstance(f, bool):
            fold = int(f)
        elif isinstance(f, str) and f.strip().isdigit():
            fold = int(f)
        else:
            raise ConfigError(f"{name}: fold {f!r} is not an integer")
        if not 1 <= fold <= N_FOLDS:
            raise ConfigError(f"{name}: fold {fold} is not in 1..{N_FOLDS}")
        if fold in out:
            raise ConfigError(f"{name}: fold {fold} is listed twice")
        out.append(fold)
    if not out:
        raise ConfigError(f"{name} names no fold; each split needs >= 1")
    return sorted(out)


def check_folds(train_folds, valid_folds, test_folds):
    """Validate the three fold lists: in 1..10, non-empty, disjoint.

    Arguments
    ---------
    train_folds : int or list of int
        Folds of the training split.
    valid_folds : int or list of int
        Folds of the validation split.
    test_folds : int or list of int
        Folds of the test split.

    Returns
    -------
    dict
        Split name to sorted list of folds.

    Raises
    ------
    speechbrain_relevance.errors.ConfigError
        (a ValueError) If a fold is out of range, repeated, or in two
        splits.

    Example
    -------
    >>> check_folds([1, 2], 3, [4])
    {'train': [1, 2], 'valid': [3], 'test': [4]}
    >>> check_folds([1, 2], [2], [4])
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: folds must be disjoint: fold 2 \
is in train and valid
    """
    splits = {
        "train": _normalize_folds("train_folds", train_folds),
        "valid": _normalize_folds("valid_folds", valid_folds),
        "test": _normalize_folds("test_folds", test_folds),
    }
    owner = {}
    for split, folds in splits.items():
        for fold in folds:
            if fold in owner:
                raise ConfigError(
                    f"folds must be disjoint: fold {fold} is in "
                    f"{owner[fold]} and {split}"
                )
            owner[fold] = split
    return splits


def _int(value):
    """Parse an integer csv field (``"3"`` or ``"3.0"``), or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _read_metadata(us8k):
    """Read the csv rows (line number, dict), or raise on a broken csv."""
    path = os.path.join(us8k, "metadata", "UrbanSound8K.csv")
    if not os.path.isfile(path):
        raise UrbanSound8KError([(path, "metadata csv not found")])
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(enumerate(reader, start=2))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UrbanSound8KError(
            [(path, f"unreadable metadata csv ({e})")]
        ) from e
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise UrbanSound8KError([(
            path,
            f"metadata csv lacks column(s) {', '.join(missing)} "
            f"(header: {','.join(header) or 'empty'})",
        )])
    if not rows:
        raise UrbanSound8KError([(path, "metadata csv has no rows")])
    return path, rows


def _index_audio(us8k):
    """Map each wav file name under ``audio/fold*/`` to its fold(s)."""
    where = {}
    for fold in range(1, N_FOLDS + 1):
        folder = os.path.join(us8k, "audio", f"fold{fold}")
        if not os.path.isdir(folder):
            continue
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.lower().endswith(".wav"):
                    where.setdefault(entry.name, []).append(fold)
    return where


def _check_row(us8k, csv_path, line, row, where, seen):
    """Validate one csv row against itself and the files on disk.

    Returns ``(path, parsed, problems)``: the file the row points at, its
    parsed fields (None if unusable) and a list of reasons.
    """
    name = (row.get("slice_file_name") or "").strip()
    where_line = f"(csv line {line})"
    if not name:
        return f"{csv_path}:{line}", None, ["empty slice_file_name"]
    problems = []
    for column in CSV_COLUMNS:
        if row.get(column) is None or not str(row[column]).strip():
            problems.append(f"missing {column} {where_line}")
    fold = _int(row.get("fold"))
    class_id = _int(row.get("classID"))
    salience = _int(row.get("salience"))
    fs_id = (row.get("fsID") or "").strip()
    label = (row.get("class") or "").strip()
    if fold is None or not 1 <= fold <= N_FOLDS:
        problems.append(f"fold {row.get('fold')!r} is not in 1..10 "
                        f"{where_line}")
        fold = None
    if class_id is None or not 0 <= class_id < len(CLASSES):
        problems.append(f"classID {row.get('classID')!r} is not in 0..9 "
                        f"{where_line}")
        class_id = None
    elif label != CLASSES[class_id]:
        problems.append(
            f"class {label!r} does not match classID {class_id} "
            f"({CLASSES[class_id]}) {where_line}"
        )
    if salience not in (1, 2):
        problems.append(f"salience {row.get('salience')!r} is not 1 or 2 "
                        f"{where_line}")
    parts = _NAME.match(name)
    if parts is None:
        problems.append(
            f"file name is not <fsID>-<classID>-<occurrence>-<slice>.wav "
            f"{where_line}"
        )
    else:
        if fs_id and parts.group(1) != fs_id:
            problems.append(f"file name says fsID {parts.group(1)}, csv "
                            f"says {fs_id} {where_line}")
        if class_id is not None and int(parts.group(2)) != class_id:
            problems.append(f"file name says classID {parts.group(2)}, csv "
                            f"says {class_id} {where_line}")
    if name in seen:
        problems.append(f"listed twice in the csv (lines {seen[name]} and "
                        f"{line})")
    seen.setdefault(name, line)

    folds_on_disk = where.get(name, [])
    if fold is not None:
        path = os.path.join(us8k, "audio", f"fold{fold}", name)
        if fold not in folds_on_disk:
            if folds_on_disk:
                problems.append(
                    f"csv says fold {fold} but the file is in "
                    + ", ".join(f"fold{f}" for f in folds_on_disk)
                    + f" {where_line}"
                )
            else:
                problems.append("file not found")
        elif len(folds_on_disk) > 1:
            problems.append(
                "the same file name is in "
                + ", ".join(f"fold{f}" for f in folds_on_disk)
            )
    else:
        path = os.path.join(us8k, "audio", name)
    if problems:
        return path, None, problems
    parsed = {
        "fold": fold, "class_id": class_id, "class": label,
        "fsID": fs_id, "salience": salience,
    }
    return path, parsed, []


# One 25 ms analysis frame (1102 samples at 44.1 kHz): shorter clips
# hold no frame of sound, only padding.
MIN_SECONDS = 1102 / 44100


def _read_header(path, check_audio, expected_duration=None):
    """Header facts of one file; ``"full"`` also decodes every sample.

    A WAV whose data is cut short of its header's size is rejected by
    ``audio_info``; a clip much shorter than its csv ``end - start`` is
    logged as suspicious.
    """
    info = audio_info(path)
    reject, warn = clip_length_problem(info, MIN_SECONDS, expected_duration)
    if reject:
        raise AudioFileError(path, reject)
    if warn:
        logger.warning("%s: %s by its csv row (cut short?)", path, warn)
    if check_audio == "full":
        # Catches files whose header is fine but whose samples cannot be
        # decoded or hold NaN/inf, at the cost of decoding the corpus.
        load_audio(path, mono=False)
    return info


def _csv_duration(row):
    """``end - start`` of a csv row in seconds, or None if unparsable."""
    try:
        return float(row["end"]) - float(row["start"])
    except (KeyError, TypeError, ValueError):
        return None


def prepare_urbansound8k(data_folder, save_folder, train_folds, valid_folds,
                         test_folds, skip_bad_files=False,
                         check_audio="header"):
    """Write ``train.json``, ``valid.json`` and ``test.json`` manifests.

    Arguments
    ---------
    data_folder : str
        The ``UrbanSound8K`` folder or the folder that holds it.
    save_folder : str
        Where the manifests (and the options used) are written.
    train_folds : int or list of int
        Predefined folds (1-10) of the training split. Each split needs at
        least one fold, no fold may be in two splits, and folds are never
        reshuffled.
    valid_folds : int or list of int
        Folds of the validation split.
    test_folds : int or list of int
        Folds of the test split.
    skip_bad_files : bool
        Skip bad files (each named in a logged warning) instead of raising.
        A broken or missing metadata csv, and a split left empty, still
        raise.
    check_audio : str
        ``"header"`` reads each header of the requested folds (fast;
        catches missing, empty and corrupt files); ``"full"`` also decodes
        all samples (slower; also catches undecodable data and NaN or
        infinite samples).

    Returns
    -------
    dict
        Split name to manifest path.

    Raises
    ------
    speechbrain_relevance.errors.ConfigError
        (a ValueError) If the fold lists are invalid.
    UrbanSound8KError
        (a ValueError) listing every bad file with its reason, if any and
        not ``skip_bad_files``; or if the metadata csv is missing or
        malformed, or a split would be empty.

    Example
    -------
    >>> import json, os, tempfile
    >>> from synthetic_urbansound8k import generate_synthetic_urbansound
    >>> root = tempfile.mkdtemp()
    >>> _ = generate_synthetic_urbansound(
    ...     root, 1, max_duration=0.1, min_duration=0.05)
    >>> paths = prepare_urbansound8k(
    ...     root, os.path.join(root, "prep"), [1, 2, 3, 4, 5, 6, 7, 8], [9],
    ...     [10])
    >>> with open(paths["test"]) as f:
    ...     test = json.load(f)
    >>> len(test), {e["fold"] for e in test.values()}
    (10, {10})
    """
    splits = check_folds(train_folds, valid_folds, test_folds)
    if check_audio not in ("header", "full"):
        raise ConfigError(
            f"check_audio must be 'header' or 'full', got {check_audio!r}"
        )
    us8k = find_urbansound8k(data_folder)
    save_folder = os.path.abspath(save_folder)
    os.makedirs(save_folder, exist_ok=True)
    paths = manifest_paths(save_folder)
    options = {
        "data_folder": os.path.realpath(us8k),
        "splits": splits,
        "skip_bad_files": bool(skip_bad_files),
        "check_audio": check_audio,
        # An edited csv (removed or relabelled clips) must not leave stale
        # manifests looking up to date.
        "csv_fingerprint": files_fingerprint(
            us8k, [os.path.join("metadata", "UrbanSound8K.csv")]
        ),
    }
    if up_to_date(save_folder, options, paths):
        logger.info("UrbanSound8K manifests in %s are up to date; "
                    "reusing them", save_folder)
        return paths

    csv_path, rows = _read_metadata(us8k)
    where = _index_audio(us8k)
    manifests, problems = _read_clips(
        us8k, csv_path, rows, where, splits, check_audio
    )
    if problems and not skip_bad_files:
        raise UrbanSound8KError(
            problems,
            hint="Fix the files, or pass skip_bad_files=True to skip them.",
        )
    for path, reason in problems:
        logger.warning("Skipping %s: %s", path, reason)
    _warn_unlisted(us8k, rows, where)
    _warn_leaks(manifests)
    empty = [s for s in SPLITS if not manifests[s]]
    if empty:
        raise UrbanSound8KError(
            [(us8k, f"split {s} (folds {splits[s]}) would be empty")
             for s in empty],
            hint="Refusing to write an empty manifest.",
        )
    write_manifests(save_folder, manifests, options, paths)
    for split in SPLITS:
        logger.info("Wrote %d %s entries (folds %s) to %s",
                    len(manifests[split]), split, splits[split],
                    paths[split])
    return paths


def _read_clips(us8k, csv_path, rows, where, splits, check_audio):
    """Check the rows of the requested folds and read their headers.

    Returns the manifest of each split and the ``(path, reason)`` of every
    unusable row.
    """
    fold_to_split = {f: s for s, folds in splits.items() for f in folds}
    manifests = {s: {} for s in SPLITS}
    problems, seen = [], {}
    for line, row in rows:
        path, parsed, reasons = _check_row(
            us8k, csv_path, line, row, where, seen
        )
        if not _relevant(row, where, fold_to_split):
            continue
        if parsed is not None:
            try:
                info = _read_header(
                    path, check_audio, _csv_duration(row)
                )
            except AudioFileError as e:
                reasons = [e.reason]
        if reasons:
            problems.extend((path, r) for r in reasons)
            continue
        stem = os.path.splitext(os.path.basename(path))[0]
        manifests[fold_to_split[parsed["fold"]]][stem] = {
            "wav": path,
            "duration": info.duration,
            "class": parsed["class"],
            "class_id": parsed["class_id"],
            "fold": parsed["fold"],
            "fsID": parsed["fsID"],
            "salience": parsed["salience"],
            "sample_rate": info.sample_rate,
            "channels": info.channels,
        }
    return manifests, problems


def _relevant(row, where, fold_to_split):
    """Whether a csv row concerns a requested fold.

    Rows that belong to no requested fold, by the csv or by the folder the
    file is in, are not read and cannot spoil this split; rows whose fold
    cannot be parsed are always reported.
    """
    name = (row.get("slice_file_name") or "").strip()
    csv_fold = _int(row.get("fold"))
    return (
        csv_fold not in range(1, N_FOLDS + 1)
        or csv_fold in fold_to_split
        or any(f in fold_to_split for f in where.get(name, []))
    )


def _warn_unlisted(us8k, rows, where):
    """Warn about wav files that the metadata csv does not list."""
    listed = {(row.get("slice_file_name") or "").strip() for _, row in rows}
    unlisted = sorted(set(where) - listed)
    if unlisted:
        logger.warning(
            "%d wav file(s) under %s are not in the metadata csv and are "
            "ignored, e.g. %s", len(unlisted), us8k, ", ".join(unlisted[:5])
        )


def _warn_leaks(manifests):
    """Warn about recordings (fsIDs) whose slices are in several folds."""
    fs_folds = {}
    for manifest in manifests.values():
        for entry in manifest.values():
            fs_folds.setdefault(entry["fsID"], set()).add(entry["fold"])
    leaking = sorted(k for k, v in fs_folds.items() if len(v) > 1)
    if leaking:
        # The official folds keep each recording in one fold; a copy that
        # does not leaks recordings between splits. Worth a loud warning,
        # though not worth refusing the authors' own fold assignment.
        logger.warning(
            "%d fsID(s) appear in several folds, e.g. %s",
            len(leaking), ", ".join(leaking[:5]),
        )


def main(argv=None):
    """Command-line entry point (``--help`` lists the options).

    Arguments
    ---------
    argv : list of str, optional
        Arguments; ``sys.argv[1:]`` if None.
    """
    parser = ArgumentParser(
        description="Write SpeechBrain manifests for UrbanSound8K folds."
    )
    parser.add_argument("--data_folder", required=True,
                        help="UrbanSound8K folder or its parent")
    parser.add_argument("--save_folder", required=True)
    parser.add_argument("--train_folds", type=int, nargs="+", required=True)
    parser.add_argument("--valid_folds", type=int, nargs="+", required=True)
    parser.add_argument("--test_folds", type=int, nargs="+", required=True)
    parser.add_argument("--skip_bad_files", action="store_true",
                        help="skip bad files with a warning instead of "
                             "raising")
    parser.add_argument("--check_audio", choices=("header", "full"),
                        default="full")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    paths = prepare_urbansound8k(
        args.data_folder, args.save_folder, args.train_folds,
        args.valid_folds, args.test_folds,
        skip_bad_files=args.skip_bad_files, check_audio=args.check_audio,
    )
    for split, path in paths.items():
        print(f"{split}: {path}")


if __name__ == "__main__":
    run_main(main)
