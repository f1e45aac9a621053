"""Data preparation for DCASE2020 Task 1A (TAU Urban Acoustic Scenes 2020).

Reads the official development set layout::

    TAU-urban-acoustic-scenes-2020-mobile-development/
        audio/<scene>-<city>-<location>-<segment>-<device>.wav
        meta.csv
        evaluation_setup/fold1_train.csv
        evaluation_setup/fold1_evaluate.csv

and writes SpeechBrain JSON manifests ``train.json``, ``valid.json`` and
``test.json``. ``test`` is the official fold-1 evaluation split. The
official training split is divided into ``train`` and ``valid`` by
recording location (the ``identifier`` column): clips from one location
are strongly correlated (same place, same session, parallel devices), so a
split by clip would leak them into validation.

Every problem with the input (missing or unreadable csv files or columns,
rows of the folds absent from meta.csv, unknown scene labels, missing or
unreadable audio, a wrong sample rate or channel count) is collected and
reported at once in a single :class:`DatasetError`, or, with
``skip_bad_files=True``, the offending files are skipped with one warning
each.

Example
-------
>>> import tempfile
>>> from synthetic_dcase2020 import generate_synthetic_dcase
>>> data = generate_synthetic_dcase(
...     tempfile.mkdtemp(), n_cities=2, n_segments_per_location=1,
...     duration=0.2, scenes=("bus", "tram"), devices=("a", "b"))
>>> paths = prepare_dcase2020(data, tempfile.mkdtemp())
>>> sorted(paths)
['test', 'train', 'valid']

Authors
 * speechbrain-relevance developers
"""

import csv
import logging
import os
import random
import sys

from speechbrain_relevance.cli import ArgumentParser, run_main
from speechbrain_relevance.data.audio import (
    audio_info,
    clip_length_problem,
    load_audio,
)
from speechbrain_relevance.data.preparation import (
    PreparationError,
    files_fingerprint,
    header_problems,
    manifest_paths,
    up_to_date,
    write_manifests,
)
from speechbrain_relevance.errors import AudioFileError, ConfigError

# Recipe modules import their siblings by name, as train.py does.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

logger = logging.getLogger(__name__)

#: Folder of the DCASE2020 Task 1A development set.
DCASE_DIRNAME = "TAU-urban-acoustic-scenes-2020-mobile-development"

#: The ten acoustic scenes, in the order of the paper's Table 1.
DCASE_SCENES = (
    "airport",
    "bus",
    "metro",
    "metro_station",
    "park",
    "public_square",
    "shopping_mall",
    "street_pedestrian",
    "street_traffic",
    "tram",
)

#: The scenes' column names in the paper's Table 1 (the recipe's yamls
#: give the same as ``abbreviations``).
DCASE_ABBREVIATIONS = {
    "airport": "AP",
    "bus": "BS",
    "metro": "MT",
    "metro_station": "MS",
    "park": "PK",
    "public_square": "PS",
    "shopping_mall": "SM",
    "street_pedestrian": "SP",
    "street_traffic": "ST",
    "tram": "TM",
}

#: Recording devices; s4-s6 appear only in the evaluation split.
DCASE_DEVICES = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")
DCASE_EVAL_ONLY_DEVICES = ("s4", "s5", "s6")
DCASE_REFERENCE_DEVICE = "a"

DATASET_DIRNAME = DCASE_DIRNAME
SCENES = DCASE_SCENES
META_COLUMNS = ("filename", "scene_label", "identifier", "source_label")
FOLD_COLUMNS = ("filename", "scene_label")
TRAIN_CSV = os.path.join("evaluation_setup", "fold1_train.csv")
EVALUATE_CSV = os.path.join("evaluation_setup", "fold1_evaluate.csv")
CHECK_AUDIO_MODES = ("header", "full")
CLIP_SECONDS = 10.0
# One analysis frame of the recipe (2048 samples at 44.1 kHz): anything
# shorter cannot be framed (the reflect padding needs more samples).
MIN_SECONDS = 2048 / 44100


class DatasetError(PreparationError):
    """The dataset is incomplete or malformed.

    Arguments
    ---------
    problems : list of tuple
        ``(path, reason)`` pairs, one per problem.
    header : str
        First line of the message.

    Example
    -------
    >>> err = DatasetError([("a.wav", "file not found")])
    >>> print(err)
    DCASE2020 dataset has 1 problem(s):
      a.wav: file not found
    >>> err.problems
    [('a.wav', 'file not found')]
    """

    dataset = "DCASE2020"

    def default_header(self):
        """Return the first line of the message."""
        return f"DCASE2020 dataset has {len(self.problems)} problem(s):"


def find_dataset_folder(data_folder):
    """Return the ``TAU-...-development`` folder for ``data_folder``.

    Arguments
    ---------
    data_folder : str
        The dataset folder itself or its parent.

    Returns
    -------
    str
        Absolute path of the folder holding ``meta.csv``.

    Raises
    ------
    DatasetError
        If neither folder holds ``meta.csv``.

    Example
    -------
    >>> import tempfile
    >>> try:
    ...     find_dataset_folder(tempfile.mkdtemp())
    ... except DatasetError as err:
    ...     print(str(err).split(" in ")[0])
    meta.csv not found
    """
    folder = os.path.abspath(data_folder)
    candidates = [folder, os.path.join(folder, DATASET_DIRNAME)]
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, "meta.csv")):
            return candidate
    raise DatasetError(
        [(os.path.join(c, "meta.csv"), "file not found") for c in candidates],
        header=(
            f"meta.csv not found in {folder} or in its {DATASET_DIRNAME} "
            "subfolder; data_folder must be the DCASE2020 Task 1A "
            "development set or its parent:"
        ),
    )


def parse_stem(stem):
    """Split an official file stem into its parts.

    Arguments
    ---------
    stem : str
        ``<scene>-<city>-<location>-<segment>-<device>``.

    Returns
    -------
    dict or None
        Keys ``scene``, ``city``, ``location``, ``segment``, ``device``,
        ``identifier``; None if the stem does not follow the pattern.

    Example
    -------
    >>> parse_stem("street_traffic-lyon-1160-44215-s3")["identifier"]
    'lyon-1160'
    >>> parse_stem("not-a-dcase-name") is None
    True
    """
    parts = stem.split("-")
    if len(parts) != 5 or not all(parts):
        return None
    scene, city, location, segment, device = parts
    return {
        "scene": scene,
        "city": city,
        "location": location,
        "segment": segment,
        "device": device,
        "identifier": f"{city}-{location}",
    }


def _read_tsv(path, columns, fatal, label):
    """Read a tab-separated file, checking the header.

    Structural problems (missing file, missing columns) go to ``fatal``;
    rows are returned as ``(line_number, dict)``, ragged rows included
    with a None marker so the caller can report them per file.
    """
    if not os.path.isfile(path):
        fatal.append((path, f"{label} not found"))
        return []
    try:
        # utf-8-sig: a byte-order mark left by a spreadsheet would
        # otherwise become part of the first column name.
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter="\t")
            header = next(reader, None)
            if header is None:
                fatal.append((path, f"{label} is empty"))
                return []
            header = [h.strip() for h in header]
            missing = [c for c in columns if c not in header]
            if missing:
                fatal.append((
                    path,
                    f"{label} lacks column(s) {missing} (header {header}; "
                    "expected tab-separated "
                    f"{' '.join(columns)})",
                ))
                return []
            rows = []
            for line_no, values in enumerate(reader, start=2):
                if not values or not any(v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    rows.append((line_no, None, values))
                    continue
                row = {h: v.strip() for h, v in zip(header, values)}
                rows.append((line_no, row, values))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        fatal.append((path, f"{label} is unreadable ({e})"))
        return []


def _read_meta(folder, fatal, problems):
    """Map each relative filename of meta.csv to its row."""
    path = os.path.join(folder, "meta.csv")
    meta = {}
    for line_no, row, values in _read_tsv(path, META_COLUMNS, fatal,
                                          "meta.csv"):
        where = f"meta.csv line {line_no}"
        if row is None:
            problems.append((
                values[0] if values else where,
                f"{where} has {len(values)} fields, expected "
                f"{len(META_COLUMNS)}",
            ))
            continue
        name = row["filename"]
        if name in meta:
            problems.append((name, f"{where} repeats this filename"))
            continue
        meta[name] = row
    return meta


def _check_row(name, row, meta_row, where):
    """Return why a fold row is unusable, or None."""
    if meta_row is None:
        return f"{where}: not listed in meta.csv"
    scene = row["scene_label"]
    if scene not in SCENES:
        return f"{where}: unknown scene label {scene!r}"
    if meta_row["scene_label"] != scene:
        return (f"{where}: scene label {scene!r} differs from meta.csv "
                f"({meta_row['scene_label']!r})")
    parts = parse_stem(os.path.splitext(os.path.basename(name))[0])
    if parts is None:
        return (f"{where}: filename is not "
                "<scene>-<city>-<location>-<segment>-<device>.wav")
    if parts["scene"] != scene:
        return f"{where}: filename scene {parts['scene']!r} != {scene!r}"
    if meta_row["identifier"] != parts["identifier"]:
        return (f"{where}: meta.csv identifier "
                f"{meta_row['identifier']!r} != {parts['identifier']!r}")
    if meta_row["source_label"] != parts["device"]:
        return (f"{where}: meta.csv source_label "
                f"{meta_row['source_label']!r} != {parts['device']!r}")
    return None


def _read_fold(folder, rel_path, meta, fatal, problems):
    """Return the usable entries of a fold csv, keyed by filename."""
    path = os.path.join(folder, rel_path)
    label = os.path.basename(rel_path)
    entries = {}
    for line_no, row, values in _read_tsv(path, FOLD_COLUMNS, fatal, label):
        where = f"{label} line {line_no}"
        if row is None:
            problems.append((
                values[0] if values else where,
                f"{where} has {len(values)} fields, expected "
                f"{len(FOLD_COLUMNS)}",
            ))
            continue
        name = row["filename"]
        if name in entries:
            problems.append((name, f"{where}: repeated filename"))
            continue
        reason = _check_row(name, row, meta.get(name), where)
        if reason is not None:
            problems.append((name, reason))
            continue
        parts = parse_stem(os.path.splitext(os.path.basename(name))[0])
        entries[name] = {
            "wav": os.path.join(folder, name),
            "scene": row["scene_label"],
            "device": parts["device"],
            "city": parts["city"],
            "identifier": parts["identifier"],
        }
    return entries


def _check_audio(entry, expected_sample_rate, check_audio, short=None):
    """Fill ``entry["duration"]``; return why the audio is unusable.

    Clips much shorter than 10 s are appended to ``short`` as
    ``(path, what)``.
    """
    path = entry["wav"]
    try:
        info = audio_info(path)
    except AudioFileError as e:
        return e.reason
    reasons = header_problems(info, expected_sample_rate)
    if reasons:
        return reasons[0]
    reject, warn = clip_length_problem(info, MIN_SECONDS, CLIP_SECONDS)
    if reject:
        return reject
    if warn and short is not None:
        short.append((path, warn))
    if check_audio == "full":
        try:
            load_audio(path, sample_rate=expected_sample_rate, strict=True)
        except AudioFileError as e:
            return e.reason
    entry["duration"] = round(info.duration, 6)
    return None


def split_by_location(entries, valid_locations_fraction, seed):
    """Choose the recording locations (identifiers) held out for validation.

    Every scene that has at least two locations gets one of them in the
    validation set (so validation covers every scene whenever that leaves
    training at least one location of the scene); more locations are then
    drawn until about ``valid_locations_fraction`` of all of them are held
    out. With few locations per scene the coverage rule can therefore
    exceed the fraction. A fraction of 0 gives an empty validation set.

    Arguments
    ---------
    entries : dict
        Manifest entries (``identifier`` and ``scene`` keys are used).
    valid_locations_fraction : float
        Target share of locations in validation, in [0, 1).
    seed : int
        Seed of the draw; the result depends only on it and the entries.

    Returns
    -------
    set of str
        Identifiers for validation.

    Example
    -------
    >>> entries = {
    ...     f"{s}{i}": {"identifier": f"city-{s}{i}", "scene": s}
    ...     for s in ("bus", "park") for i in range(5)
    ... }
    >>> held = split_by_location(entries, 0.1, seed=1)
    >>> sorted({entries[k]["scene"] for k in entries
    ...         if entries[k]["identifier"] in held})
    ['bus', 'park']
    >>> len(held)
    2
    """
    _check_fraction(valid_locations_fraction)
    scenes_of = {}
    for entry in entries.values():
        scenes_of.setdefault(entry["identifier"], set()).add(entry["scene"])
    identifiers = sorted(scenes_of)
    if valid_locations_fraction == 0 or len(identifiers) < 2:
        return set()
    target = max(1, round(valid_locations_fraction * len(identifiers)))
    rng = random.Random(seed)
    # Train locations left per scene; a pick may not empty any scene.
    left = {}
    for ident in identifiers:
        for scene in scenes_of[ident]:
            left[scene] = left.get(scene, 0) + 1

    def can_take(ident):
        return all(left[s] > 1 for s in scenes_of[ident])

    held = set()

    def take(ident):
        held.add(ident)
        for s in scenes_of[ident]:
            left[s] -= 1

    scenes = sorted(left)
    rng.shuffle(scenes)
    for scene in scenes:
        covered = any(scene in scenes_of[i] for i in held)
        if covered:
            continue
        options = [i for i in identifiers
                   if scene in scenes_of[i] and i not in held
                   and can_take(i)]
        if options:
            take(rng.choice(options))
    pool = [i for i in identifiers if i not in held]
    rng.shuffle(pool)
    for ident in pool:
        if len(held) >= target:
            break
        if can_take(ident):
            take(ident)
    return held


def _check_fraction(valid_locations_fraction):
    if not 0 <= valid_locations_fraction < 1:
        raise ConfigError("valid_locations_fraction must be in [0, 1)")


def prepare_dcase2020(
    data_folder,
    save_folder,
    valid_locations_fraction=0.1,
    seed=1234,
    expected_sample_rate=44100,
    skip_bad_files=False,
    check_audio="header",
):
    """Write train/valid/test JSON manifests for DCASE2020 Task 1A.

    Entries are keyed by file stem, e.g. ``airport-barcelona-0-0-a``::

        {"wav": "/abs/.../audio/airport-barcelona-0-0-a.wav",
         "duration": 10.0, "scene": "airport", "device": "a",
         "city": "barcelona", "identifier": "barcelona-0"}

    ``test`` is ``fold1_evaluate.csv``; ``fold1_train.csv`` is split into
    ``train`` and ``valid`` by recording location (see
    :func:`split_by_location`), never by clip. The options are stored in
    ``prepare_options.json``; calling again with the same
    options (and unchanged csv files) keeps the existing manifests.

    Arguments
    ---------
    data_folder : str
        ``TAU-urban-acoustic-scenes-2020-mobile-development`` or its parent.
    save_folder : str
        Where the manifests go (created if needed).
    valid_locations_fraction : float
        Share of the training locations held out for validation.
    seed : int
        Seed of the validation draw.
    expected_sample_rate : int or None
        Required sample rate; None accepts any.
    skip_bad_files : bool
        Skip unusable files with a warning each, instead of raising.
    check_audio : str
        ``"header"`` reads each file's header; ``"full"`` also decodes
        every file (slow, catches truncated or corrupt data).

    Returns
    -------
    dict
        Paths of the ``train``, ``valid`` and ``test`` manifests.

    Raises
    ------
    DatasetError
        Listing every problem found (csv files or columns missing, and,
        unless ``skip_bad_files``, every unusable file and why).

    Example
    -------
    >>> import json, tempfile
    >>> from synthetic_dcase2020 import generate_synthetic_dcase
    >>> data = generate_synthetic_dcase(
    ...     tempfile.mkdtemp(), n_cities=2, n_segments_per_location=1,
    ...     duration=0.2, scenes=("park",), devices=("a",))
    >>> paths = prepare_dcase2020(data, tempfile.mkdtemp(), seed=3)
    >>> test = json.load(open(paths["test"]))
    >>> sorted(next(iter(test.values())))
    ['city', 'device', 'duration', 'identifier', 'scene', 'wav']
    """
    if check_audio not in CHECK_AUDIO_MODES:
        raise ConfigError(
            f"check_audio must be one of {CHECK_AUDIO_MODES}, got "
            f"{check_audio!r}"
        )
    _check_fraction(valid_locations_fraction)
    folder = find_dataset_folder(data_folder)
    save_folder = os.path.abspath(save_folder)
    paths = manifest_paths(save_folder)
    options = {
        "data_folder": folder,
        "valid_locations_fraction": float(valid_locations_fraction),
        "seed": int(seed),
        "expected_sample_rate": expected_sample_rate,
        "skip_bad_files": bool(skip_bad_files),
        "check_audio": check_audio,
        "csv_fingerprint": files_fingerprint(
            folder, ["meta.csv", TRAIN_CSV, EVALUATE_CSV]
        ),
    }
    # A validation split may be empty by request (fraction 0).
    if up_to_date(save_folder, options, paths, allow_empty=("valid",)):
        logger.info("DCASE2020 manifests in %s are up to date, skipping "
                    "preparation", save_folder)
        return paths

    folds, problems = _read_folds(folder)
    problems += _check_clips(folds, expected_sample_rate, check_audio)
    _report(problems, skip_bad_files)
    _refuse_empty_folds(folder, folds)
    train, valid = _split_train_valid(
        _key_by_stem(folds["train"]), valid_locations_fraction, seed
    )
    manifests = {
        "train": train, "valid": valid, "test": _key_by_stem(folds["test"])
    }
    # DCASE2020 manifests have always ended without a newline.
    write_manifests(save_folder, manifests, options, paths, newline=False)
    for split, data in manifests.items():
        logger.info("Wrote %s (%d clips, %d locations)", paths[split],
                    len(data), len({e["identifier"] for e in data.values()}))
    return paths


def _read_folds(folder):
    """Read meta.csv and the two fold csv files.

    Returns the usable entries of each fold (``train``, ``test``) and the
    problems of the other rows; a missing or malformed csv raises.
    """
    fatal, problems = [], []
    meta = _read_meta(folder, fatal, problems)
    if fatal:
        # Without a usable meta.csv every fold row would also be reported
        # as "not listed": the one real problem would drown.
        raise DatasetError(fatal + problems)
    folds = {
        "train": _read_fold(folder, TRAIN_CSV, meta, fatal, problems),
        "test": _read_fold(folder, EVALUATE_CSV, meta, fatal, problems),
    }
    if fatal:
        # Without the csv structure nothing below is meaningful; report it
        # together with any row problems already found.
        raise DatasetError(fatal + problems)
    overlap = sorted(set(folds["train"]) & set(folds["test"]))
    for name in overlap:
        problems.append((name, "listed in both fold1_train.csv and "
                               "fold1_evaluate.csv"))
        del folds["train"][name], folds["test"][name]
    return folds, problems


def _check_clips(folds, expected_sample_rate, check_audio):
    """Check every clip's audio; drop the unusable ones, return why."""
    logger.info("Checking %d audio files (%s)", len(folds["train"])
                + len(folds["test"]), check_audio)
    problems, short = [], []
    for entries in folds.values():
        for name in sorted(entries):
            reason = _check_audio(entries[name], expected_sample_rate,
                                  check_audio, short)
            if reason is not None:
                problems.append((entries[name]["wav"], reason))
                del entries[name]
    if short:
        # One line, not one per clip: a whole cut-down copy of the set
        # would otherwise flood the log.
        logger.warning(
            "%d clip(s) much shorter than the %g s of DCASE2020 clips "
            "(cut short?), e.g. %s", len(short), CLIP_SECONDS,
            "; ".join(f"{p}: {w}" for p, w in short[:3]),
        )
    return problems


def _report(problems, skip_bad_files):
    """Raise the problems, or log each one skipped."""
    if not problems:
        return
    if not skip_bad_files:
        raise DatasetError(problems)
    for path, reason in problems:
        logger.warning("Skipping %s: %s", path, reason)
    logger.warning("Skipped %d unusable file(s) of the DCASE2020 set",
                   len(problems))


def _refuse_empty_folds(folder, folds):
    """Raise if a fold has no usable clip left."""
    # A header-only csv (or one whose every clip was skipped) would
    # otherwise surface as a bare IndexError inside SpeechBrain's dataset.
    empty = [
        (os.path.join(folder, csv_name), f"no usable {split} clips")
        for split, csv_name in (("train", TRAIN_CSV), ("test", EVALUATE_CSV))
        if not folds[split]
    ]
    if empty:
        raise DatasetError(empty)


def _split_train_valid(train, valid_locations_fraction, seed):
    """Hold out whole recording locations of ``train`` for validation."""
    held = split_by_location(train, valid_locations_fraction, seed)
    valid = {k: v for k, v in train.items() if v["identifier"] in held}
    train = {k: v for k, v in train.items() if v["identifier"] not in held}
    if valid_locations_fraction > 0 and not valid:
        logger.warning("Too few recording locations for a validation split;"
                       " valid.json is empty")
    return train, valid


def _key_by_stem(entries):
    keyed = {}
    for name in sorted(entries):
        entry = entries[name]
        stem = os.path.splitext(os.path.basename(name))[0]
        keyed[stem] = {
            "wav": entry["wav"],
            "duration": entry["duration"],
            "scene": entry["scene"],
            "device": entry["device"],
            "city": entry["city"],
            "identifier": entry["identifier"],
        }
    return keyed


def main(argv=None):
    """Command line for :func:`prepare_dcase2020`.

    ``--data_folder`` and ``--save_folder``, as for every recipe; the two
    folders may also be given as positional arguments (the earlier form).

    Arguments
    ---------
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    dict
        Paths of the written manifests.
    """
    parser = ArgumentParser(
        description="Write SpeechBrain manifests for DCASE2020 Task 1A."
    )
    parser.add_argument("--data_folder",
                        help="TAU-urban-acoustic-scenes-2020-mobile-"
                             "development or its parent")
    parser.add_argument("--save_folder", help="where the manifests go")
    parser.add_argument("folders", nargs="*", metavar="FOLDER",
                        help="data_folder and save_folder, positionally "
                             "(instead of the two options)")
    parser.add_argument("--valid_locations_fraction", type=float,
                        default=0.1)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--expected_sample_rate", type=int, default=44100,
                        help="0 accepts any sample rate")
    parser.add_argument("--skip_bad_files", action="store_true")
    parser.add_argument("--check_audio", choices=CHECK_AUDIO_MODES,
                        default="full")
    args = parser.parse_args(argv)
    data_folder, save_folder = _folders(parser, args)
    return prepare_dcase2020(
        data_folder,
        save_folder,
        valid_locations_fraction=args.valid_locations_fraction,
        seed=args.seed,
        expected_sample_rate=args.expected_sample_rate or None,
        skip_bad_files=args.skip_bad_files,
        check_audio=args.check_audio,
    )


def _folders(parser, args):
    """Return the two folders, from the options or positionally."""
    flags = [args.data_folder, args.save_folder]
    if len(args.folders) > 2:
        parser.error(f"unrecognized arguments: {' '.join(args.folders[2:])}")
    if args.folders and any(f is not None for f in flags):
        parser.error("give the folders as --data_folder/--save_folder or "
                     "positionally, not both")
    if args.folders:
        flags = [*args.folders, None][:2]
    for name, value in zip(("--data_folder", "--save_folder"), flags):
        if value is None:
            parser.error(f"the following arguments are required: {name}")
    return flags


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    run_main(main)
