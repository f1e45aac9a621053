"""FSDD data preparation on the vendored real subset (tests/data/fsdd).

The subset holds takes 0-2 of every digit and speaker (180 real clips);
tests that damage or extend it work on a private copy.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_relevance.cli import run_main
from speechbrain_relevance.errors import AudioFileError

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "FSDD"),
]
from prepare_fsdd import FSDD_DIGITS, FSDD_SPEAKERS  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREP_PATH = os.path.join(REPO, "recipes", "FSDD", "prepare_fsdd.py")
FSDD = os.path.join(REPO, "tests", "data", "fsdd")
RECORDINGS = os.path.join(FSDD, "recordings")
FULL_DATASET = "/work/shared/datasets/fsdd"


@pytest.fixture(scope="module")
def prep():
    """The recipe's prep module (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("prepare_fsdd", PREP_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def copy(tmp_path):
    """A private copy of the subset's recordings."""
    dst = tmp_path / "fsdd" / "recordings"
    shutil.copytree(RECORDINGS, dst)
    return dst


def _read(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _manifests(paths):
    return {split: _read(path) for split, path in paths.items()}


def _speakers(entries):
    return {e["speaker"] for e in entries.values()}


def _problems(excinfo):
    """Problems of an FSDDError as {file name or option: [reasons]}."""
    out = {}
    for path, reason in excinfo.value.problems:
        out.setdefault(os.path.basename(path), []).append(reason)
    return out


def test_vendored_subset_is_complete_and_small():
    names = sorted(os.listdir(RECORDINGS))
    expected = sorted(
        f"{d}_{s}_{t}.wav"
        for d in FSDD_DIGITS for s in FSDD_SPEAKERS for t in range(3)
    )
    assert names == expected and len(names) == 180
    total = sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, files in os.walk(FSDD) for f in files
    )
    assert total < 3 * 1024 * 1024
    with open(os.path.join(FSDD, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert "CC BY-SA 4.0" in readme
    assert "Jakobovski/free-spoken-digit-dataset" in readme
    assert os.path.isfile(os.path.join(FSDD, "metadata.py"))
    if os.path.isdir(FULL_DATASET):  # copied unchanged
        for name in names[::17]:
            with open(os.path.join(RECORDINGS, name), "rb") as a, open(
                os.path.join(FULL_DATASET, "recordings", name), "rb"
            ) as b:
                assert a.read() == b.read(), name


@pytest.mark.parametrize(
    "test_speaker, valid", [("theo", "yweweler"), ("yweweler", "george")]
)
def test_speaker_split(prep, tmp_path, test_speaker, valid):
    paths = prep.prepare_fsdd(FSDD, str(tmp_path / "prep"),
                              test_speaker=test_speaker)
    m = _manifests(paths)
    assert _speakers(m["test"]) == {test_speaker}
    assert _speakers(m["valid"]) == {valid}
    assert _speakers(m["train"]) == set(FSDD_SPEAKERS) - {test_speaker, valid}
    assert [len(m[s]) for s in ("train", "valid", "test")] == [120, 30, 30]
    keys = [set(m[s]) for s in ("train", "valid", "test")]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    entry = m["test"][f"7_{test_speaker}_2"]
    assert set(entry) == {"wav", "duration", "digit", "speaker", "take"}
    assert entry["digit"] == "7" and entry["take"] == 2
    assert entry["speaker"] == test_speaker
    assert entry["wav"] == os.path.join(RECORDINGS, f"7_{test_speaker}_2.wav")
    assert os.path.isabs(entry["wav"])
    info = sf.info(entry["wav"])
    assert entry["duration"] == pytest.approx(info.frames / 8000)
    assert {e["digit"] for e in m["train"].values()} == set(FSDD_DIGITS)


def test_speaker_split_options(prep, tmp_path):
    # Given the recordings folder itself, several validation speakers.
    paths = prep.prepare_fsdd(
        RECORDINGS, str(tmp_path / "a"), test_speaker="theo",
        valid_speakers=["lucas", "george"],
    )
    m = _manifests(paths)
    assert _speakers(m["valid"]) == {"lucas", "george"}
    assert _speakers(m["train"]) == {"jackson", "nicolas", "yweweler"}
    # The default test speaker is the first one, sorted.
    m = _manifests(prep.prepare_fsdd(FSDD, str(tmp_path / "b")))
    assert _speakers(m["test"]) == {"george"}
    assert _speakers(m["valid"]) == {"jackson"}


def test_official_split(prep, copy, tmp_path):
    # The subset has takes 0-2 only: add takes 7 (valid) and 23 (train).
    for name in os.listdir(copy):
        digit, speaker, take = name[:-4].split("_")
        if take == "1":
            shutil.copy(copy / name, copy / f"{digit}_{speaker}_7.wav")
        if take == "2":
            shutil.copy(copy / name, copy / f"{digit}_{speaker}_23.wav")
    m = _manifests(prep.prepare_fsdd(str(copy.parent), str(tmp_path / "p"),
                                     split="official"))
    takes = {s: {e["take"] for e in m[s].values()} for s in m}
    assert takes == {"test": {0, 1, 2}, "valid": {7}, "train": {23}}
    for split in m:
        assert _speakers(m[split]) == set(FSDD_SPEAKERS)
    assert [len(m[s]) for s in ("train", "valid", "test")] == [60, 60, 180]

    # On the subset alone, validation and training would be empty.
    with pytest.raises(prep.FSDDError) as e:
        prep.prepare_fsdd(FSDD, str(tmp_path / "q"), split="official")
    reasons = _problems(e)["recordings"]
    assert any("split valid (takes 5-9) would be empty" in r for r in reasons)
    assert any("split train (takes 10 and above) would be empty" in r
               for r in reasons)


def test_reuse_and_reprepare(prep, copy, tmp_path, monkeypatch):
    save = str(tmp_path / "prep")
    paths = prep.prepare_fsdd(str(copy), save, test_speaker="lucas")
    stamp = os.stat(paths["train"]).st_mtime_ns

    # Same options, same files: reused without reading any audio.
    def no_read(path):
        raise AssertionError(f"read {path}")

    with monkeypatch.context() as mp:
        mp.setattr(prep, "audio_info", no_read)
        assert prep.prepare_fsdd(str(copy), save, test_speaker="lucas") \
            == paths
    assert os.stat(paths["train"]).st_mtime_ns == stamp

    # A changed recording (new length) is re-read.
    clip = copy / "4_george_1.wav"
    sf.write(clip, np.full(1600, 0.1), 8000, subtype="PCM_16")
    prep.prepare_fsdd(str(copy), save, test_speaker="lucas")
    assert _read(paths["train"])["4_george_1"]["duration"] == 0.2

    # An added recording appears; a removed one disappears.
    shutil.copy(clip, copy / "4_george_9.wav")
    os.remove(copy / "5_george_0.wav")
    prep.prepare_fsdd(str(copy), save, test_speaker="lucas")
    train = _read(paths["train"])
    assert "4_george_9" in train and "5_george_0" not in train

    # Same size, new content and modification time: re-prepared, and the
    # damage is found.
    before = os.stat(clip)
    clip.write_bytes(b"\0" * before.st_size)
    # (Coarse file-system clocks: make sure the time moves.)
    os.utime(clip, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    with pytest.raises(prep.FSDDError, match="4_george_1.wav: unreadable"):
        prep.prepare_fsdd(str(copy), save, test_speaker="lucas")

    # Other options re-prepare too.
    os.remove(clip)
    paths = prep.prepare_fsdd(str(copy), save, test_speaker="theo")
    assert _speakers(_read(paths["test"])) == {"theo"}


def test_folds_share_one_audio_check(prep, copy, tmp_path, monkeypatch):
    cache = str(tmp_path / "audio_check.json")
    first = prep.prepare_fsdd(
        str(copy), str(tmp_path / "lucas"), test_speaker="lucas",
        check_audio="full", check_cache=cache,
    )
    plain = prep.prepare_fsdd(
        str(copy), str(tmp_path / "plain"), test_speaker="theo",
        check_audio="full",
    )

    def no_read(path):
        raise AssertionError(f"read {path}")

    # Another fold of the same recordings reads no audio, and its
    # manifests are those of a preparation without the cache.
    with monkeypatch.context() as mp:
        mp.setattr(prep, "audio_info", no_read)
        mp.setattr(prep, "load_audio", no_read)
        theo = prep.prepare_fsdd(
            str(copy), str(tmp_path / "theo"), test_speaker="theo",
            check_audio="full", check_cache=cache,
        )
        assert _manifests(theo) == _manifests(plain)
        # Other check options are not taken from the cache.
        with pytest.raises(AssertionError, match="read"):
            prep.prepare_fsdd(
                str(copy), str(tmp_path / "header"), test_speaker="theo",
                check_audio="header", check_cache=cache,
            )
    # The cache holds every clip, not only the first fold's splits.
    assert len(_read(cache)["durations"]) == len(os.listdir(copy))
    assert _speakers(_read(first["test"])) == {"lucas"}
    # A recording damaged after the check is read again and named.
    clip = copy / "4_george_1.wav"
    before = os.stat(clip)
    clip.write_bytes(b"\0" * before.st_size)
    os.utime(clip, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    with pytest.raises(prep.FSDDError, match="4_george_1.wav: unreadable"):
        prep.prepare_fsdd(
            str(copy), str(tmp_path / "nicolas"), test_speaker="nicolas",
            check_audio="full", check_cache=cache,
        )


def _write(path, data, rate=8000, subtype="PCM_16"):
    sf.write(str(path), data, rate, subtype=subtype)


def test_every_bad_file_is_reported_at_once(prep, copy, tmp_path):
    voice = sf.read(str(copy / "3_theo_0.wav"))[0]
    (copy / "hello.wav").write_bytes(b"RIFF")
    _write(copy / "12_theo_0.wav", voice)
    _write(copy / "7_theo.wav", voice)
    _write(copy / "7_Theo_x.wav", voice)
    (copy / "3_theo_40.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 9)
    _write(copy / "3_theo_41.wav", np.zeros(4000) + 0.1, rate=16000)
    _write(copy / "3_theo_42.wav", np.stack([voice, voice], axis=1))
    (copy / "3_theo_43.wav").write_bytes(b"")
    _write(copy / "3_theo_44.wav", np.zeros(0))
    _write(copy / "3_theo_45.wav", voice[:80])
    _write(copy / "3_theo_46.wav", np.zeros(2000))  # silent: "full" only
    nan = voice.copy()
    nan[10] = np.nan
    _write(copy / "3_theo_47.wav", nan, subtype="FLOAT")  # "full" only
    (copy / "4_theo_48.wav").mkdir()
    shutil.copy(copy / "3_theo_1.wav", copy / "3_theo_01.wav")
    # Not recordings: ignored.
    (copy / "README.md").write_text("notes")
    (copy / "metadata.py").write_text("metadata = {}")
    (copy / "sub").mkdir()

    with pytest.raises(prep.FSDDError) as e:
        prep.prepare_fsdd(str(copy), str(tmp_path / "p"), test_speaker="theo")
    found = _problems(e)
    name_reason = "file name is not {digit}_{speaker}_{take}.wav"
    expected = {
        "hello.wav": name_reason,
        "7_theo.wav": name_reason,
        "7_Theo_x.wav": name_reason,
        "12_theo_0.wav": "digit '12' is not one of 0-9",
        "3_theo_40.wav": "unreadable audio",
        "3_theo_41.wav": "sample rate 16000 Hz, expected 8000 Hz",
        "3_theo_42.wav": "2 channels, expected mono",
        "3_theo_43.wav": "unreadable audio",
        "3_theo_44.wav": "no samples",
        "3_theo_45.wav": "0.0100 s long, shorter than min_duration 0.05 s",
        "4_theo_48.wav": "not a regular file",
        "3_theo_1.wav": "same digit, speaker and take as 3_theo_01.wav",
    }
    assert set(found) == set(expected)
    for name, reason in expected.items():
        assert len(found[name]) == 1 and reason in found[name][0], name
    message = str(e.value)
    assert message.startswith(f"{len(expected)} problem(s) preparing FSDD:")
    assert str(copy / "3_theo_41.wav") in message
    assert not os.path.exists(tmp_path / "p" / "train.json")

    # Decoding every sample also finds the silent and the NaN clip.
    with pytest.raises(prep.FSDDError) as e:
        prep.prepare_fsdd(str(copy), str(tmp_path / "p"), test_speaker="theo",
                          check_audio="full")
    found = _problems(e)
    assert set(found) == set(expected) | {"3_theo_46.wav", "3_theo_47.wav"}
    assert found["3_theo_46.wav"] == ["audio is all zeros (silence)"]
    assert "NaN or infinite" in found["3_theo_47.wav"][0]

    # A lower min_duration accepts the short clip.
    keep = {"3_theo_45.wav", "3_theo_1.wav"}
    for name in set(expected) - keep | {"3_theo_01.wav"}:
        path = copy / name
        shutil.rmtree(path) if path.is_dir() else os.remove(path)
    paths = prep.prepare_fsdd(str(copy), str(tmp_path / "p"),
                              test_speaker="theo", min_duration=0.005)
    assert "3_theo_45" in _read(paths["test"])


def test_folder_and_speaker_errors(prep, copy, tmp_path):
    save = str(tmp_path / "p")
    with pytest.raises(prep.FSDDError, match="data folder not found"):
        prep.prepare_fsdd(str(tmp_path / "nowhere"), save)
    empty = tmp_path / "empty"
    (empty / "recordings").mkdir(parents=True)
    (empty / "README.md").write_text("no audio here")
    with pytest.raises(prep.FSDDError, match="no recordings"):
        prep.prepare_fsdd(str(empty), save)

    speakers = ", ".join(FSDD_SPEAKERS)
    with pytest.raises(prep.FSDDError) as e:
        prep.prepare_fsdd(FSDD, save, test_speaker="bob",
                          valid_speakers=["eve", "theo"])
    assert _problems(e) == {
        "test_speaker": [
            f"unknown speaker 'bob'; the speakers are {speakers}"
        ],
        "valid_speakers": [
            f"unknown speaker 'eve'; the speakers are {speakers}"
        ],
    }
    with pytest.raises(prep.FSDDError, match="also the test speaker"):
        prep.prepare_fsdd(FSDD, save, test_speaker="theo",
                          valid_speakers="theo")

    # Two speakers: nobody left to train on.
    for name in os.listdir(copy):
        if name.split("_")[1] not in ("theo", "lucas"):
            os.remove(copy / name)
    with pytest.raises(prep.FSDDError,
                       match=r"split train \(speakers: none\) would be empty"):
        prep.prepare_fsdd(str(copy), save, test_speaker="theo")

    for kwargs in ({"split": "random"}, {"check_audio": "all"},
                   {"min_duration": -1}, {"split": "official",
                                          "test_speaker": "theo"}):
        with pytest.raises(ValueError):
            prep.prepare_fsdd(FSDD, save, **kwargs)


def test_unknown_speakers_are_fine(prep, copy, tmp_path):
    for name in os.listdir(copy):
        if name.split("_")[1] == "theo":
            os.rename(copy / name, copy / name.replace("theo", "zed2"))
    m = _manifests(prep.prepare_fsdd(str(copy), str(tmp_path / "p"),
                                     test_speaker="zed2"))
    assert _speakers(m["test"]) == {"zed2"}
    assert _speakers(m["valid"]) == {"george"}  # cyclic: zed2 is last


def test_load_fsdd_clip(prep, tmp_path):
    path = os.path.join(RECORDINGS, "7_jackson_0.wav")
    raw, rate = sf.read(path, dtype="float32")
    assert rate == 8000 and len(raw) < 8000
    wav = prep.load_fsdd_clip(path)
    assert wav.shape == (8000,) and wav.dtype == torch.float32
    peak = float(np.abs(raw).max())
    assert float(wav.abs().max()) == pytest.approx(peak / (peak + 1e-4))
    assert torch.allclose(wav[: len(raw)],
                          torch.from_numpy(raw) / (peak + 1e-4))
    assert not wav[len(raw):].any()
    short = prep.load_fsdd_clip(path, duration=0.1)
    assert short.shape == (800,) and torch.equal(short, wav[:800])

    stereo = tmp_path / "stereo.wav"
    _write(stereo, np.stack([raw, raw], axis=1))
    fast = tmp_path / "fast.wav"
    _write(fast, raw, rate=16000)
    for bad, reason in ((stereo, "expected mono"), (fast, "16000 Hz")):
        with pytest.raises(AudioFileError, match=reason):
            prep.load_fsdd_clip(str(bad))


def _run_cli(prep, argv):
    """Run the command line as its script does: (exit status, output)."""
    try:
        run_main(prep.main, argv, prog="prepare_fsdd")
    except SystemExit as e:
        return e.code
    return 0


def test_cli_reports_bad_input(prep, tmp_path, capsys):
    save = str(tmp_path / "p")
    # Bad data or options: one error message through cli.run_main, exit 1.
    for argv, fragment in (
        (["--data_folder", FSDD, "--save_folder", save, "--test_speaker",
          "bob"], "unknown speaker 'bob'"),
        (["--data_folder", FSDD, "--save_folder", save, "--split",
          "official", "--test_speaker", "theo"], "split='speaker' only"),
    ):
        assert _run_cli(prep, argv) == 1, argv
        captured = capsys.readouterr()
        assert captured.err.startswith("prepare_fsdd: error: ")
        assert fragment in captured.err and captured.out == ""
        assert "Traceback" not in captured.err
    # A malformed command line: argparse's usage message, exit 2.
    for argv, fragment in (
        (["--data_folder", FSDD, "--save_folder", save, "--split", "x"],
         "invalid choice: 'x'"),
        (["--save_folder", save], "--data_folder"),
    ):
        assert _run_cli(prep, argv) == 2, argv
        captured = capsys.readouterr()
        assert fragment in captured.err.splitlines()[-1]

    assert _run_cli(prep, ["--data_folder", FSDD, "--save_folder", save,
                           "--test_speaker", "nicolas"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{s}: {os.path.join(save, s)}.json"
                   for s in ("train", "valid", "test")]

    # As a script: exit status 1, the problems listed, no traceback.
    proc = subprocess.run(
        [sys.executable, PREP_PATH, "--data_folder", str(tmp_path / "none"),
         "--save_folder", save],
        capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1",
                 PYTHONPATH=os.pathsep.join(
                     p for p in (REPO, os.environ.get("PYTHONPATH")) if p)),
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "prepare_fsdd.py: error: 1 problem(s) preparing FSDD:",
        f"  {tmp_path / 'none'}: data folder not found",
    ]
