"""Synthetic UrbanSound8K generator and the UrbanSound8K data preparation."""

import csv
import filecmp
import importlib.util
import inspect
import json
import logging
import os
import re
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_relevance.data.audio import load_audio
from speechbrain_relevance.errors import AudioFileError

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "UrbanSound8k"),
]
import synthetic_urbansound8k as synth  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREP_PATH = os.path.join(
    REPO, "recipes", "UrbanSound8k", "prepare_urbansound8k.py"
)
HEADER = "slice_file_name,fsID,start,end,salience,fold,classID,class"
OFFICIAL = {
    0: "air_conditioner", 1: "car_horn", 2: "children_playing",
    3: "dog_bark", 4: "drilling", 5: "engine_idling", 6: "gun_shot",
    7: "jackhammer", 8: "siren", 9: "street_music",
}
CLIPS = 2  # per class per fold
SPLIT = {"train_folds": [1, 2, 3, 4, 5, 6, 7, 8], "valid_folds": [9],
         "test_folds": [10]}


@pytest.fixture(scope="module")
def prep():
    """The recipe's prep module (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "prepare_urbansound8k", PREP_PATH
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny synthetic set shared by the read-only tests."""
    root = tmp_path_factory.mktemp("us8k")
    us8k = synth.generate_synthetic_urbansound(
        str(root), clips_per_class_per_fold=CLIPS, seed=0,
        max_duration=0.5, min_duration=0.1,
    )
    return us8k


@pytest.fixture
def copy(dataset, tmp_path):
    """A private copy of the set for tests that damage it."""
    return shutil.copytree(dataset, str(tmp_path / "UrbanSound8K"))


def read_rows(us8k):
    with open(os.path.join(us8k, "metadata", "UrbanSound8K.csv")) as f:
        return list(csv.DictReader(f))


def write_rows(us8k, rows, fieldnames=None):
    fieldnames = fieldnames or HEADER.split(",")
    with open(os.path.join(us8k, "metadata", "UrbanSound8K.csv"), "w",
              newline="") as f:
        writer = csv.DictWriter(f, fieldnames, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def wav_path(us8k, row):
    return os.path.join(
        us8k, "audio", f"fold{row['fold']}", row["slice_file_name"]
    )


def load_json(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------
# Synthetic generator
# ---------------------------------------------------------------------------


def test_official_layout_and_header(dataset):
    assert sorted(os.listdir(dataset)) == ["audio", "metadata"]
    assert sorted(os.listdir(os.path.join(dataset, "audio"))) == sorted(
        f"fold{k}" for k in range(1, 11)
    )
    with open(os.path.join(dataset, "metadata", "UrbanSound8K.csv")) as f:
        assert f.readline().strip() == HEADER
    rows = read_rows(dataset)
    assert len(rows) == CLIPS * 10 * 10
    assert dict(enumerate(synth.CLASSES)) == OFFICIAL
    counts = {}
    for row in rows:
        match = re.fullmatch(r"(\d+)-(\d)-(\d+)-(\d+)\.wav",
                             row["slice_file_name"])
        assert match, row["slice_file_name"]
        assert match.group(1) == row["fsID"]
        assert match.group(2) == row["classID"]
        assert OFFICIAL[int(row["classID"])] == row["class"]
        assert row["salience"] in ("1", "2")
        assert float(row["end"]) > float(row["start"]) >= 0
        assert os.path.isfile(wav_path(dataset, row))
        key = (row["fold"], row["classID"])
        counts[key] = counts.get(key, 0) + 1
    assert set(counts.values()) == {CLIPS} and len(counts) == 100
    n_files = sum(
        len(files) for _, _, files in os.walk(os.path.join(dataset, "audio"))
    )
    assert n_files == len(rows)


def test_formats_and_durations_are_mixed(dataset):
    rates, channels, subtypes, durations = set(), set(), set(), []
    for row in read_rows(dataset):
        info = sf.info(wav_path(dataset, row))
        rates.add(info.samplerate)
        channels.add(info.channels)
        subtypes.add(info.subtype)
        durations.append(info.frames / info.samplerate)
        # The csv describes the slice the file holds.
        span = float(row["end"]) - float(row["start"])
        assert abs(span - durations[-1]) < 1e-5
    assert rates == set(synth.SAMPLE_RATES)
    assert min(rates) == 8000 and max(rates) == 96000
    assert channels == {1, 2}
    assert subtypes == {"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"}
    assert max(durations) <= 0.5 + 1e-9
    assert min(durations) < 0.5 - 1e-3  # some clips are shorter


def test_each_fsid_in_one_fold_and_format(dataset):
    folds, formats = {}, {}
    for row in read_rows(dataset):
        folds.setdefault(row["fsID"], set()).add(row["fold"])
        info = sf.info(wav_path(dataset, row))
        formats.setdefault(row["fsID"], set()).add(
            (info.samplerate, info.channels, info.subtype)
        )
    assert all(len(v) == 1 for v in folds.values())
    # Slices of one source recording share its format, as in the real set.
    assert all(len(v) == 1 for v in formats.values())
    # Several recordings contribute more than one slice.
    assert len(folds) < len(read_rows(dataset))


def test_audio_is_finite_and_not_silent(dataset):
    for row in read_rows(dataset)[::7]:
        x, _ = sf.read(wav_path(dataset, row), always_2d=True)
        assert np.isfinite(x).all()
        assert 0.05 < np.abs(x).max() <= 1.0


def test_deterministic_by_seed(tmp_path):
    kwargs = {"clips_per_class_per_fold": 1, "max_duration": 0.1,
              "min_duration": 0.05}
    a = synth.generate_synthetic_urbansound(str(tmp_path / "a"), seed=3,
                                            **kwargs)
    b = synth.generate_synthetic_urbansound(str(tmp_path / "b"), seed=3,
                                            **kwargs)
    c = synth.generate_synthetic_urbansound(str(tmp_path / "c"), seed=4,
                                            **kwargs)
    rows = read_rows(a)
    assert rows == read_rows(b)
    assert rows != read_rows(c)
    for row in rows:
        pa, pb = wav_path(a, row), wav_path(b, row)
        ia, ib = sf.info(pa), sf.info(pb)
        assert (ia.samplerate, ia.channels, ia.subtype) == (
            ib.samplerate, ib.channels, ib.subtype)
        np.testing.assert_array_equal(sf.read(pa)[0], sf.read(pb)[0])
        # libsndfile stamps float files with the write time (PEAK chunk);
        # every other file is identical byte for byte.
        if ia.subtype != "FLOAT":
            assert filecmp.cmp(pa, pb, shallow=False)


def test_refuses_to_overwrite(tmp_path):
    kwargs = {"clips_per_class_per_fold": 1, "max_duration": 0.05,
              "min_duration": 0.05}
    synth.generate_synthetic_urbansound(str(tmp_path), **kwargs)
    with pytest.raises(FileExistsError):
        synth.generate_synthetic_urbansound(str(tmp_path), **kwargs)
    synth.generate_synthetic_urbansound(str(tmp_path), overwrite=True,
                                        **kwargs)


def test_synthetic_cli(tmp_path):
    synth.main(["--root", str(tmp_path), "--clips_per_class_per_fold", "1",
                "--max_duration", "0.05", "--min_duration", "0.05",
                "--seed", "1"])
    assert len(read_rows(str(tmp_path / "UrbanSound8K"))) == 100


# ---------------------------------------------------------------------------
# Data preparation
# ---------------------------------------------------------------------------


def test_prep_writes_requested_folds(prep, dataset, tmp_path):
    paths = prep.prepare_urbansound8k(dataset, str(tmp_path), **SPLIT)
    assert set(paths) == {"train", "valid", "test"}
    rows = {os.path.splitext(r["slice_file_name"])[0]: r
            for r in read_rows(dataset)}
    seen = set()
    for split, folds in (("train", range(1, 9)), ("valid", [9]),
                         ("test", [10])):
        manifest = load_json(paths[split])
        assert len(manifest) == CLIPS * 10 * len(folds)
        assert {e["fold"] for e in manifest.values()} == set(folds)
        for stem, e in manifest.items():
            assert set(e) == {"wav", "duration", "class", "class_id",
                              "fold", "fsID", "salience", "sample_rate",
                              "channels"}
            row = rows[stem]
            assert os.path.isabs(e["wav"]) and os.path.isfile(e["wav"])
            assert os.path.basename(os.path.dirname(e["wav"])) == (
                f"fold{e['fold']}"
            )
            assert e["fold"] == int(row["fold"])
            assert e["class_id"] == int(row["classID"])
            assert e["class"] == OFFICIAL[e["class_id"]]
            assert e["fsID"] == row["fsID"] and isinstance(e["fsID"], str)
            assert e["salience"] == int(row["salience"])
            info = sf.info(e["wav"])
            assert e["sample_rate"] == info.samplerate
            assert e["channels"] == info.channels
            assert e["duration"] == pytest.approx(
                info.frames / info.samplerate
            )
        assert not seen & set(manifest)
        seen |= set(manifest)
    assert seen == set(rows)


def test_prep_is_not_speechbrains_and_never_writes_empty(
    prep, dataset, tmp_path, monkeypatch
):
    """SpeechBrain's own prep loses every file to a removed torchaudio API.

    Ours is a different function that reads headers with soundfile: even
    with torchaudio's header readers broken on purpose, every manifest is
    non-empty and every entry's file loads as a 4 s, 44.1 kHz mono clip.
    """
    import torchaudio

    assert inspect.getsourcefile(prep.prepare_urbansound8k) == PREP_PATH
    with open(PREP_PATH) as f:
        assert "torchaudio.info" not in f.read()

    def broken(*args, **kwargs):
        raise AttributeError("torchaudio.info was removed")

    monkeypatch.setattr(torchaudio, "info", broken, raising=False)
    paths = prep.prepare_urbansound8k(dataset, str(tmp_path), **SPLIT)
    total, by_format = 0, {}
    for split in ("train", "valid", "test"):
        manifest = load_json(paths[split])
        assert len(manifest) > 0, f"{split}.json is empty"
        total += len(manifest)
        for entry in manifest.values():
            wav = load_audio(entry["wav"], mono=False)
            frames = round(entry["duration"] * entry["sample_rate"])
            assert wav.shape == (entry["channels"], frames)
            by_format[entry["sample_rate"], entry["channels"]] = entry
    # The recipe's loading policy on one clip per rate and channel count
    # (resampling every clip to 44.1 kHz would dominate the test time).
    for entry in by_format.values():
        wav = prep.load_urbansound_clip(entry["wav"])
        assert wav.shape == (176400,) and wav.dtype == torch.float32
        assert torch.isfinite(wav).all() and wav.abs().max() > 0.5
    assert total == len(read_rows(dataset))


def test_prep_accepts_dataset_folder_or_parent(prep, dataset, tmp_path):
    a = prep.prepare_urbansound8k(dataset, str(tmp_path / "a"), **SPLIT)
    b = prep.prepare_urbansound8k(
        os.path.dirname(dataset), str(tmp_path / "b"), **SPLIT
    )
    for split in a:
        assert load_json(a[split]) == load_json(b[split])
    with pytest.raises(ValueError, match="neither"):
        prep.prepare_urbansound8k(str(tmp_path / "nowhere"),
                                  str(tmp_path / "c"), **SPLIT)


def test_prep_reuses_manifests(prep, dataset, tmp_path, monkeypatch):
    paths = prep.prepare_urbansound8k(dataset, str(tmp_path), **SPLIT)

    def fail(*args):
        raise AssertionError("the metadata was read again")

    with monkeypatch.context() as m:
        m.setattr(prep, "_read_metadata", fail)
        assert prep.prepare_urbansound8k(
            dataset, str(tmp_path), **SPLIT
        ) == paths
    # Other folds: prepared again.
    other = {"train_folds": [2, 3, 4, 5, 6, 7, 8, 9], "valid_folds": [10],
             "test_folds": [1]}
    paths = prep.prepare_urbansound8k(dataset, str(tmp_path), **other)
    assert {e["fold"] for e in load_json(paths["test"]).values()} == {1}
    # An empty manifest left behind (e.g. by another prep) is not reused.
    with open(paths["valid"], "w") as f:
        f.write("{}")
    prep.prepare_urbansound8k(dataset, str(tmp_path), **other)
    assert len(load_json(paths["valid"])) == CLIPS * 10


@pytest.mark.parametrize(
    "folds, message",
    [
        (([1, 2, 3], [3], [4]), "disjoint: fold 3 is in train and valid"),
        (([1, 2], [3], [2]), "disjoint: fold 2 is in train and test"),
        (([0, 1], [2], [3]), "fold 0 is not in 1..10"),
        (([1], [2], [11]), "fold 11 is not in 1..10"),
        (([1], [], [3]), "valid_folds names no fold"),
        (([1, 1], [2], [3]), "fold 1 is listed twice"),
        (([1.5], [2], [3]), "is not an integer"),
    ],
)
def test_prep_rejects_bad_folds(prep, dataset, tmp_path, folds, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        prep.prepare_urbansound8k(dataset, str(tmp_path), *folds)
    assert not os.listdir(tmp_path)


def test_prep_cli(prep, dataset, tmp_path, capsys):
    prep.main(["--data_folder", dataset, "--save_folder", str(tmp_path),
               "--train_folds", "1", "2", "--valid_folds", "3",
               "--test_folds", "4"])
    assert "test: " in capsys.readouterr().out
    assert {e["fold"] for e in load_json(
        str(tmp_path / "train.json")).values()} == {1, 2}


def damage(us8k):
    """Break three files three ways; return their paths by problem."""
    rows = read_rows(us8k)
    by_fold = {}
    for row in rows:
        by_fold.setdefault(int(row["fold"]), []).append(row)
    missing = wav_path(us8k, by_fold[1][0])
    os.remove(missing)
    corrupt = wav_path(us8k, by_fold[9][0])
    with open(corrupt, "wb") as f:
        f.write(b"this is not a RIFF file " * 40)
    mislabelled = by_fold[10][0]
    mislabelled["class"] = (
        "siren" if mislabelled["class"] != "siren" else "dog_bark"
    )
    write_rows(us8k, rows)
    return {"missing": missing, "corrupt": corrupt,
            "mislabelled": wav_path(us8k, mislabelled)}


def test_prep_reports_all_bad_files_in_one_error(prep, copy, tmp_path):
    bad = damage(copy)
    with pytest.raises(prep.UrbanSound8KError) as info:
        prep.prepare_urbansound8k(copy, str(tmp_path / "save"), **SPLIT)
    error = info.value
    assert isinstance(error, ValueError)
    assert len(error.problems) == 3
    reasons = dict(error.problems)
    assert reasons[bad["missing"]] == "file not found"
    assert "unreadable audio" in reasons[bad["corrupt"]]
    assert "does not match classID" in reasons[bad["mislabelled"]]
    for path in bad.values():
        assert path in str(error)
    assert "skip_bad_files" in str(error)
    assert not os.path.exists(tmp_path / "save" / "train.json")


def test_prep_skip_bad_files_warns_and_skips(prep, copy, tmp_path, caplog):
    bad = damage(copy)
    with caplog.at_level(logging.WARNING):
        paths = prep.prepare_urbansound8k(
            copy, str(tmp_path), skip_bad_files=True, **SPLIT
        )
    warned = "\n".join(r.getMessage() for r in caplog.records
                       if r.levelno == logging.WARNING)
    for path in bad.values():
        assert f"Skipping {path}" in warned
    wavs = set()
    for split, n_folds in (("train", 8), ("valid", 1), ("test", 1)):
        manifest = load_json(paths[split])
        assert len(manifest) == CLIPS * 10 * n_folds - 1
        wavs |= {e["wav"] for e in manifest.values()}
    assert not wavs & set(bad.values())


def test_prep_reports_csv_fold_disagreeing_with_folder(prep, copy, tmp_path):
    row = next(r for r in read_rows(copy) if r["fold"] == "2")
    moved = os.path.join(copy, "audio", "fold3", row["slice_file_name"])
    shutil.move(wav_path(copy, row), moved)
    with pytest.raises(prep.UrbanSound8KError) as info:
        prep.prepare_urbansound8k(copy, str(tmp_path), **SPLIT)
    (path, reason), = info.value.problems
    assert path == wav_path(copy, row)
    assert "csv says fold 2 but the file is in fold3" in reason


def test_prep_full_check_catches_bad_samples(prep, copy, tmp_path):
    folds = {"train_folds": [1], "valid_folds": [2], "test_folds": [10]}
    rows = [r for r in read_rows(copy) if r["fold"] == "10"]
    # A float file holding NaNs: its header is fine.
    nan_path = wav_path(copy, rows[0])
    x, rate = sf.read(nan_path, always_2d=True)
    x[len(x) // 2] = np.nan
    sf.write(nan_path, x, rate, subtype="FLOAT")
    # A truncated file: libsndfile would quietly read the frames present.
    cut_path = wav_path(copy, rows[1])
    with open(cut_path, "rb") as f:
        data = f.read()
    with open(cut_path, "wb") as f:
        f.write(data[: len(data) // 2])
    stem = os.path.splitext(rows[1]["slice_file_name"])[0]

    # The header check already rejects the truncated file, naming it.
    with pytest.raises(prep.UrbanSound8KError) as info:
        prep.prepare_urbansound8k(copy, str(tmp_path / "h"), **folds)
    assert [p for p, _ in info.value.problems] == [cut_path]
    assert "truncated" in info.value.problems[0][1]
    paths = prep.prepare_urbansound8k(copy, str(tmp_path / "s"),
                                      skip_bad_files=True, **folds)
    assert stem not in load_json(paths["test"])
    # The full check finds the NaN samples too.
    with pytest.raises(prep.UrbanSound8KError) as info:
        prep.prepare_urbansound8k(copy, str(tmp_path / "f"),
                                  check_audio="full", **folds)
    assert sorted(info.value.problems) == sorted([
        (nan_path, "audio holds NaN or infinite samples"),
        info.value.problems[[p for p, _ in info.value.problems].index(
            cut_path)],
    ])
    with pytest.raises(ValueError, match="check_audio"):
        prep.prepare_urbansound8k(copy, str(tmp_path), check_audio="none",
                                  **folds)


def test_prep_rejects_broken_metadata(prep, copy, tmp_path):
    rows = read_rows(copy)
    write_rows(copy, rows, [c for c in HEADER.split(",") if c != "classID"])
    with pytest.raises(prep.UrbanSound8KError, match="lacks column.*classID"):
        prep.prepare_urbansound8k(copy, str(tmp_path), **SPLIT)
    # Malformed values in several rows: every row is named.
    rows[0]["fold"] = "eleven"
    rows[1]["classID"] = "12"
    write_rows(copy, rows)
    with pytest.raises(prep.UrbanSound8KError) as info:
        prep.prepare_urbansound8k(copy, str(tmp_path), **SPLIT)
    text = str(info.value)
    assert rows[0]["slice_file_name"] in text and "'eleven'" in text
    assert rows[1]["slice_file_name"] in text and "'12'" in text
    os.remove(os.path.join(copy, "metadata", "UrbanSound8K.csv"))
    with pytest.raises(prep.UrbanSound8KError, match="csv not found"):
        prep.prepare_urbansound8k(copy, str(tmp_path), **SPLIT)


def test_prep_refuses_empty_split(prep, copy, tmp_path):
    # A copy whose csv lacks fold 10: the test split would be empty.
    write_rows(copy, [r for r in read_rows(copy) if r["fold"] != "10"])
    save = tmp_path / "save"
    for skip in (False, True):
        with pytest.raises(prep.UrbanSound8KError,
                           match=r"split test \(folds \[10\]\) would be"):
            prep.prepare_urbansound8k(copy, str(save), skip_bad_files=skip,
                                      **SPLIT)
    assert not os.listdir(save)


# ---------------------------------------------------------------------------
# Audio policy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rate, channels, seconds, subtype",
    [(8000, 2, 4.0, "PCM_U8"), (96000, 1, 4.0, "PCM_24"),
     (22050, 1, 0.3, "PCM_16"), (48000, 2, 5.0, "FLOAT")],
)
def test_load_clip_is_4s_mono_44k(prep, tmp_path, rate, channels, seconds,
                                  subtype):
    rng = np.random.default_rng(0)
    n = int(rate * seconds)
    x = 0.3 * rng.uniform(-1, 1, size=(n, channels))
    path = str(tmp_path / "clip.wav")
    sf.write(path, x, rate, subtype=subtype)
    wav = prep.load_urbansound_clip(path)
    assert wav.shape == (176400,) and wav.dtype == torch.float32
    # Peak-normalised over the whole clip, before any cropping.
    assert wav.abs().max() <= 1.0
    if seconds <= 4.0:
        assert wav.abs().max() == pytest.approx(1.0, abs=1e-3)
    if seconds < 4.0:
        tail = int(44100 * seconds) + 50
        assert torch.all(wav[tail:] == 0) and wav[: tail - 100].abs().max()
    assert prep.load_urbansound_clip(path, 16000, 1.0).shape == (16000,)


def test_load_clip_names_missing_file(prep, tmp_path):
    with pytest.raises(AudioFileError, match="missing.wav: file not found"):
        prep.load_urbansound_clip(str(tmp_path / "missing.wav"))
