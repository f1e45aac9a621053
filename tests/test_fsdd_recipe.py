"""FSDD recipe end to end on real speech (the vendored subset).

``recipes/FSDD/train.py`` runs in-process on ``tests/data/fsdd`` (takes
0-2 of every digit and speaker: 180 real clips, 30 per speaker) with 1-2
epochs and a one- or two-block CNN; ``crossval.py`` runs as users run it,
in a subprocess. Run with ``OMP_NUM_THREADS=1``: on a small shared CPU
machine OpenMP threads spin-waiting for busy cores make these tiny
operations far slower.
"""

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from speechbrain_relevance.analysis import load_trained
from speechbrain_relevance.analysis.movement import filter_movement
from speechbrain_relevance.lobes import CosGaussFilterbank

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "FSDD"),
]
from prepare_fsdd import FSDD_SPEAKERS  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(REPO, "recipes", "FSDD")
TRAIN = os.path.join(RECIPE, "train.py")
CROSSVAL = os.path.join(RECIPE, "crossval.py")
HPARAMS_DIR = os.path.join(RECIPE, "hparams")
HPARAMS = sorted(glob.glob(os.path.join(HPARAMS_DIR, "*.yaml")))
COSGAUSS = os.path.join(HPARAMS_DIR, "cosgauss.yaml")
MEL = os.path.join(HPARAMS_DIR, "mel_baseline.yaml")
FSDD = os.path.join(REPO, "tests", "data", "fsdd")
RECORDINGS = os.path.join(FSDD, "recordings")

#: A small two-block classifier.
CHANNELS = "[4,8]"


@pytest.fixture(scope="module")
def train():
    """The recipe's train.py (a script, imported under a unique name)."""
    sys.path.insert(0, RECIPE)  # it imports prepare_fsdd
    try:
        spec = importlib.util.spec_from_file_location("fsdd_train", TRAIN)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(RECIPE)
    return module


def _run(
    train, hparams, out, *args, data=FSDD, fold="theo", channels=CHANNELS
):
    argv = [
        hparams,
        f"--data_folder={data}",
        f"--output_folder={out}",
        f"--cnn_channels={channels}",
        "--noprogressbar",
        *args,
    ]
    if fold is not None:
        argv.append(f"--test_fold={fold}")
    return train.main(argv)


def _read(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _results(fold_folder):
    return (
        _read(os.path.join(fold_folder, "valid_results.json")),
        _read(os.path.join(fold_folder, "test_results.json")),
    )


def _speakers_of(manifest):
    return {e["speaker"] for e in _read(manifest).values()}


def test_smoke_cosgauss_on_real_speech(train, tmp_path):
    brain = _run(train, COSGAUSS, tmp_path, "--number_of_epochs=2")
    fold = tmp_path / "fold_theo"
    valid, test = _results(fold)
    for summary in (valid, test):
        assert 0.0 <= summary["accuracy"] <= 1.0
    # Test: every clip of the held-out speaker (3 takes x 10 digits).
    assert test["n"] == 30
    assert test["group_accuracy"] == {
        "theo": {"accuracy": test["accuracy"], "n": 30}
    }
    assert sum(test["class_counts"].values()) == 30
    assert set(test["class_counts"].values()) == {3}
    # Validation: the next speaker in sorted order.
    assert valid["n"] == 30
    assert list(valid["group_accuracy"]) == ["yweweler"]
    assert valid["group_accuracy"]["yweweler"]["n"] == 30
    # The manifests agree: four other speakers train.
    manifests = fold / "manifests"
    assert _speakers_of(manifests / "test.json") == {"theo"}
    assert _speakers_of(manifests / "valid.json") == {"yweweler"}
    assert _speakers_of(manifests / "train.json") == (
        set(FSDD_SPEAKERS) - {"theo", "yweweler"}
    )
    assert len(_read(manifests / "train.json")) == 120
    # The returned Brain holds the same summaries; two epochs were logged.
    assert brain.last_summary["accuracy"] == test["accuracy"]
    assert brain.valid_summary["accuracy"] == valid["accuracy"]
    log = (fold / "train_log.txt").read_text()
    assert "epoch: 1" in log and "epoch: 2" in log
    # The tested model on the validation speaker is logged as such: one
    # "test acc" line (the test speaker), not two.
    loaded = [ln for ln in log.splitlines() if ln.startswith("Epoch loaded")]
    assert len(loaded) == 2
    assert "valid acc" in loaded[0] and "test acc" not in loaded[0]
    assert log.count("test acc") == 1 and "test acc" in loaded[1]
    assert (fold / "test_results.md").exists()
    assert (fold / "valid_results.md").exists()


def _movement(brain, fold_folder):
    initial = load_trained(str(fold_folder)).initial_compute_features
    return filter_movement(initial, brain.modules.compute_features)


def test_frontend_lr_moves_the_filters(train, tmp_path):
    runs = {}
    for lr in (0.05, 0.00001):
        out = tmp_path / f"lr{lr}"
        brain = _run(
            train, COSGAUSS, out, "--number_of_epochs=2",
            f"--frontend_lr={lr}",
        )
        fb = brain.modules.compute_features
        groups = brain.optimizer.param_groups
        assert len(groups) == 2
        # Each group peaks at its own rate and the cosine schedule ends
        # both at 0 after the 2 epochs.
        assert groups[0]["initial_lr"] == pytest.approx(0.003)
        assert groups[1]["initial_lr"] == pytest.approx(lr)
        assert groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)
        assert groups[1]["lr"] == pytest.approx(0.0, abs=1e-9)
        assert {id(p) for p in groups[1]["params"]} == {id(fb.theta)}
        runs[lr] = _movement(brain, out / "fold_theo")
    # The rebuilt initial bank is the yaml's: a fresh mel-initialised one.
    fresh = CosGaussFilterbank(
        n_filters=40, sample_rate=8000, win_length=200, hop_length=80,
        kernel_size=129,
    )
    torch.testing.assert_close(
        torch.tensor(runs[0.05]["center_hz_initial"]),
        fresh.center_frequencies().double(),
        check_dtype=False,
    )
    large = runs[0.05]["mean_abs_center_shift_hz"]
    tiny = runs[0.00001]["mean_abs_center_shift_hz"]
    assert large > 5.0, runs[0.05]
    assert large > 10 * tiny, (large, tiny)


def test_frozen_filterbank_does_not_move(train, tmp_path):
    """--freeze_filterbank=True: the ablation's fixed Cos-Gauss bank."""
    out = tmp_path / "frozen"
    brain = _run(
        train, os.path.join(HPARAMS_DIR, "relevance_2head.yaml"), out,
        "--number_of_epochs=1", "--freeze_filterbank=True",
        # A front-end rate that would move a learnable bank visibly.
        "--frontend_lr=0.05",
    )
    fb = brain.modules.compute_features
    assert not fb.theta.requires_grad
    trained = {
        id(p) for g in brain.optimizer.param_groups for p in g["params"]
    }
    assert id(fb.theta) not in trained
    m = _movement(brain, out / "fold_theo")
    assert m["mean_abs_center_shift_hz"] == 0.0
    assert m["mean_response_distance"] == 0.0
    # The relevance weighting behind it trains.
    assert all(
        id(p) in trained for p in brain.modules.relevance.parameters()
    )


@pytest.mark.parametrize(
    "hparams", HPARAMS, ids=[os.path.basename(p) for p in HPARAMS]
)
def test_every_hparams_file_trains(train, hparams, tmp_path):
    brain = _run(
        train, hparams, tmp_path, "--number_of_epochs=1", channels="[4]"
    )
    valid, test = _results(tmp_path / "fold_theo")
    assert test["n"] == 30 and valid["n"] == 30
    assert 0.0 <= test["accuracy"] <= 1.0
    assert 0.0 <= valid["accuracy"] <= 1.0
    assert brain.last_summary["accuracy"] == test["accuracy"]


def test_hparams_files_found():
    names = {os.path.basename(p) for p in HPARAMS}
    assert {"cosgauss.yaml", "mel_baseline.yaml",
            "relevance_2head.yaml"} <= names


def _changed(initial, trained, names):
    init = dict(initial.named_parameters())
    after = dict(trained.named_parameters())
    for name in names:
        assert name in after, f"{name} is not a parameter"
        assert not torch.equal(init[name], after[name].detach()), name


PCEN_PARAMS = [
    "compression.log_alpha",
    "compression.log_delta",
    "compression.log_root",
    "compression.logit_smooth",
]


def test_cosgauss_options_end_to_end(train, tmp_path):
    brain = _run(
        train, COSGAUSS, tmp_path, "--number_of_epochs=1",
        "--bandwidth_scale=mel", "--learn_bandwidth=True",
        "--learn_gain=True", "--compression=pcen", "--feature_norm=sentence",
    )
    fold = tmp_path / "fold_theo"
    valid, test = _results(fold)
    assert test["n"] == 30 and 0.0 <= test["accuracy"] <= 1.0
    fb = brain.modules.compute_features
    assert type(fb.compression).__name__ == "PCEN"
    # Sentence norm: every band of a real clip standardised over its frames.
    # The clip as the recipe loads it: the yaml's pipeline's clip policy.
    wav = brain.hparams.pipeline.clip_policy.load(
        os.path.join(RECORDINGS, "3_theo_0.wav"), strict=True
    )
    brain.modules.eval()
    with torch.no_grad():
        (feats,) = _heads(brain, wav[None], torch.ones(1))
    torch.testing.assert_close(
        feats[0].mean(0), torch.zeros(40), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        feats[0].std(0, unbiased=False), torch.ones(40), atol=1e-3, rtol=0
    )
    initial = load_trained(str(fold)).initial_compute_features
    _changed(
        initial, fb, ["theta", "log_bandwidth", "log_gain", *PCEN_PARAMS]
    )
    for p in fb.parameters():
        assert torch.isfinite(p).all()


def test_mel_baseline_with_pcen(train, tmp_path):
    brain = _run(
        train, MEL, tmp_path, "--number_of_epochs=1", "--compression=pcen",
    )
    fold = tmp_path / "fold_theo"
    _, test = _results(fold)
    assert test["n"] == 30
    fb = brain.modules.compute_features
    assert sorted(n for n, _ in fb.named_parameters()) == sorted(PCEN_PARAMS)
    initial = load_trained(str(fold)).initial_compute_features
    _changed(initial, fb, PCEN_PARAMS)


def test_official_split_on_subset_fails_naming_empty_splits(train, tmp_path):
    # The subset has takes 0-2 only: all in the official test split.
    with pytest.raises(ValueError) as excinfo:
        _run(
            train, COSGAUSS, tmp_path, "--number_of_epochs=1",
            "--split=official", fold="official",
        )
    message = str(excinfo.value)
    assert type(excinfo.value).__name__ == "FSDDError"
    assert "split valid (takes 5-9) would be empty" in message
    assert "split train (takes 10 and above) would be empty" in message
    assert "split test" not in message
    assert not (tmp_path / "fold_official" / "test_results.json").exists()


def test_official_split_runs(train, tmp_path):
    # A copy with one take per split: take 0 stays (test), take 1 becomes
    # take 5 (validation), take 2 becomes take 10 (training).
    rec = tmp_path / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    new_take = {0: 0, 1: 5, 2: 10}
    for name in sorted(os.listdir(RECORDINGS)):
        digit, speaker, take = name[:-4].split("_")
        shutil.copy(
            os.path.join(RECORDINGS, name),
            rec / f"{digit}_{speaker}_{new_take[int(take)]}.wav",
        )
    names = os.listdir(rec)
    takes = [int(n[:-4].split("_")[2]) for n in names]
    n_test = sum(t <= 4 for t in takes)
    n_valid = sum(5 <= t <= 9 for t in takes)
    assert (n_test, n_valid, len(takes)) == (60, 60, 180)
    out = tmp_path / "out"
    _run(
        train, COSGAUSS, out, "--number_of_epochs=1", "--split=official",
        data=str(tmp_path / "fsdd"), fold="official",
    )
    fold = out / "fold_official"
    valid, test = _results(fold)
    assert test["n"] == n_test and valid["n"] == n_valid
    every_speaker = {s: 10 for s in FSDD_SPEAKERS}
    assert {g: v["n"] for g, v in test["group_accuracy"].items()} == (
        every_speaker
    )
    assert {g: v["n"] for g, v in valid["group_accuracy"].items()} == (
        every_speaker
    )
    for split, take in (("test", 0), ("valid", 5), ("train", 10)):
        entries = _read(fold / "manifests" / f"{split}.json")
        assert len(entries) == 60
        assert {e["take"] for e in entries.values()} == {take}


def test_crossval_two_folds_subprocess(tmp_path):
    out = tmp_path / "cv"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (REPO, env.get("PYTHONPATH")) if p
    )
    cmd = [
        sys.executable, CROSSVAL, COSGAUSS, "--folds", "george", "theo",
        f"--data_folder={FSDD}", f"--output_folder={out}",
        "--number_of_epochs=1", "--n_bands=8", "--cnn_channels=[4]",
        "--noprogressbar",
    ]
    proc = subprocess.run(
        cmd, cwd=RECIPE, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    agg = _read(out / "crossval_results.json")
    assert agg["folds"] == ["george", "theo"]
    assert set(agg["fold_accuracy"]) == {"george", "theo"}
    assert agg["n"] == 60
    assert 0.0 <= agg["mean_accuracy"] <= 1.0
    assert agg["mean_valid_accuracy"] is not None
    assert 0.0 <= agg["mean_valid_accuracy"] <= 1.0
    assert set(agg["fold_valid_accuracy"]) == {"george", "theo"}
    assert (out / "crossval_results.md").exists()
    # Each fold tested on its speaker and validated on the next one.
    for speaker, valid_speaker in (("george", "jackson"),
                                   ("theo", "yweweler")):
        valid, test = _results(out / f"fold_{speaker}")
        assert list(test["group_accuracy"]) == [speaker]
        assert list(valid["group_accuracy"]) == [valid_speaker]
        assert agg["fold_accuracy"][speaker] == test["accuracy"]
        assert agg["fold_valid_accuracy"][speaker] == valid["accuracy"]


def test_unknown_test_speaker_names_the_speakers(train, tmp_path):
    with pytest.raises(ValueError) as excinfo:
        _run(train, COSGAUSS, tmp_path, fold="alice")
    message = str(excinfo.value)
    assert "unknown speaker 'alice'" in message
    for speaker in FSDD_SPEAKERS:
        assert speaker in message


def test_unknown_compression_names_the_options(train, tmp_path):
    with pytest.raises(ValueError) as excinfo:
        _run(train, COSGAUSS, tmp_path, "--compression=cube")
    message = str(excinfo.value)
    assert "'cube'" in message
    for option in ("log", "learned_log", "pcen"):
        assert f"'{option}'" in message


def test_unknown_feature_norm_names_the_options(train, tmp_path):
    with pytest.raises(ValueError) as excinfo:
        _run(train, COSGAUSS, tmp_path, "--number_of_epochs=1",
             "--feature_norm=cmvn")
    message = str(excinfo.value)
    assert "'cmvn'" in message
    assert "minmax" in message and "sentence" in message


def test_missing_data_folder_is_named(train, tmp_path):
    missing = tmp_path / "no_fsdd_here"
    with pytest.raises(ValueError) as excinfo:
        _run(train, COSGAUSS, tmp_path / "out", data=str(missing))
    message = str(excinfo.value)
    assert str(missing) in message
    assert "not found" in message


def test_analysis_cli_reports_filter_movement(train, tmp_path):
    from speechbrain_relevance.analysis.__main__ import analyse as analysis

    _run(
        train, COSGAUSS, tmp_path, "--number_of_epochs=1",
        "--frontend_lr=0.05", "--bandwidth_scale=mel",
        "--learn_bandwidth=True",
    )
    out = tmp_path / "analysis"
    written = analysis([str(tmp_path / "fold_theo"), "--out", str(out)])
    assert str(out / "filter_movement.md") in written
    movement = _read(out / "filter_movement.json")
    assert len(movement["center_hz"]) == 40
    assert movement["mean_abs_center_shift_hz"] > 1.0
    assert movement["mean_abs_log2_bandwidth_ratio"] > 0.0
    text = (out / "filter_movement.md").read_text()
    assert "bandwidth init (Hz)" in text
    # FSDD's groups are speakers: the tables and reports say so.
    assert _read(tmp_path / "fold_theo" / "test_results.json")[
        "group_by"] == "speaker"
    tables = (out / "tables.md").read_text()
    assert "## Accuracy per speaker (%)" in tables
    assert "| Speaker | theo |" in tables and "device" not in tables.lower()
    report = (tmp_path / "fold_theo" / "test_results.md").read_text()
    assert "Accuracy per speaker" in report


def test_clip_cache_changes_nothing_but_the_reading(train, tmp_path):
    """Kept clips give the run an uncached run gives, bit for bit."""
    import torch

    results = {}
    for mb in (256, 0):
        out = tmp_path / f"cache_{mb}"
        brain = _run(
            train, MEL, out, "--number_of_epochs=2", f"--cache_audio_mb={mb}"
        )
        fold = out / "fold_theo"
        ckpt = glob.glob(str(fold / "save" / "CKPT+*" / "classifier.ckpt"))
        results[mb] = (
            _results(fold),
            torch.load(ckpt[0], weights_only=True),
            (fold / "train_log.txt").read_text(),
            brain,
        )
    (cached, plain) = results[256], results[0]
    assert cached[0] == plain[0]
    assert cached[1].keys() == plain[1].keys()
    for key in cached[1]:
        assert torch.equal(cached[1][key], plain[1][key]), key
    assert cached[2] == plain[2]


def test_clip_cache_keeps_every_clip_it_was_given(train, tmp_path):
    captured = {}
    real = train.ClipCache

    def spy(load, mb):
        captured["cache"] = real(load, mb)
        return captured["cache"]

    train.ClipCache = spy
    try:
        _run(train, MEL, tmp_path, "--number_of_epochs=1")
    finally:
        train.ClipCache = real
    cache = captured["cache"]
    # The fold's 180 clips (train, valid, test) are all kept, once.
    assert len(cache) == 180
    assert 0 < cache.megabytes < 256


def test_bad_cache_size_names_the_key(train, tmp_path):
    from speechbrain_relevance.errors import ConfigError

    with pytest.raises(ConfigError, match="cache_audio_mb=-5 must be a number"):
        _run(train, MEL, tmp_path, "--cache_audio_mb=-5")


def _averaged_run(train, out, *args):
    brain = _run(
        train, MEL, out, "--number_of_epochs=3", "--average_checkpoints=2",
        *args,
    )
    fold = out / "fold_theo"
    ckpt = glob.glob(str(fold / "save" / "CKPT+*" / "classifier.ckpt"))
    assert len(ckpt) == 1
    log = (fold / "train_log.txt").read_text().splitlines()
    return brain, _results(fold), torch.load(ckpt[0], weights_only=True), log


def test_skipped_validation_changes_no_result(train, tmp_path):
    """valid_interval only skips work: the same model, bit for bit."""
    every = _averaged_run(train, tmp_path / "every", "--valid_interval=1")
    skip = _averaged_run(train, tmp_path / "skip", "--valid_interval=2")
    assert every[1] == skip[1]  # valid and test results of the average
    assert every[2].keys() == skip[2].keys()
    for key in every[2]:
        assert torch.equal(every[2][key], skip[2][key]), key
    # Epochs 2 and 3 (the last) are validated, epoch 1 only logs its
    # training loss, the same as when it was validated.
    epochs = [line for line in skip[3] if line.startswith("epoch:")]
    assert ["valid acc" in line for line in epochs] == [False, True, True]
    assert epochs[0] == every[3][0].split(" - valid")[0]
    assert skip[3][1:] == every[3][1:]


@pytest.mark.parametrize(
    "args, match",
    [
        (["--valid_interval=0"], "valid_interval=0 must be an integer >= 1"),
        (
            ["--valid_interval=2", "--average_checkpoints=1"],
            "needs average_checkpoints > 1",
        ),
    ],
)
def test_bad_valid_interval_is_named(train, tmp_path, args, match):
    from speechbrain_relevance.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        _run(train, MEL, tmp_path, "--number_of_epochs=1", *args)
    # Stopped before training: no epoch was logged.
    log = tmp_path / "fold_theo" / "train_log.txt"
    assert not log.exists() or "epoch:" not in log.read_text()


def _heads(brain, wavs, lens):
    """The per-head representations the Brain's pipeline classifies."""
    pipeline = brain.pipeline
    return pipeline.split_heads(pipeline.represent(wavs, lens).weighted)
