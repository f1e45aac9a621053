"""UrbanSound8k recipe: smoke runs, 10-fold driver, aggregation, yaml keys.

Every training run happens in a subprocess (as users run the recipe) on a
tiny synthetic UrbanSound8K (one short clip per class and fold) with a tiny
CNN-LSTM. The subprocesses get ``OMP_NUM_THREADS=1``: on a small shared CPU
machine, OpenMP threads spin-waiting for busy cores make these tiny
operations about a hundred times slower.
"""

import doctest
import glob
import importlib.util
import json
import logging
import math
import os
import re
import subprocess
import sys

import pytest
import torch

from speechbrain_relevance.models import cut_patches

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "UrbanSound8k"),
]
from synthetic_urbansound8k import (  # noqa: E402
    generate_synthetic_urbansound,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(REPO, "recipes", "UrbanSound8k")
TRAIN = os.path.join(RECIPE, "train.py")
CROSSVAL = os.path.join(RECIPE, "crossval.py")
HPARAMS = sorted(glob.glob(os.path.join(RECIPE, "hparams", "*.yaml")))
SHARED_SOURCES = [
    os.path.join(REPO, "speechbrain_relevance", "training", "brain.py"),
    os.path.join(REPO, "speechbrain_relevance", "training", "distributed.py"),
    # The model card reads dataset_card.
    os.path.join(REPO, "speechbrain_relevance", "export", "card.py"),
]
TABLE2_COLUMNS = (
    "| Representation | AI | CA | CH | DO | DR | EN | GU | JA | SI | ST | Avg |"
)
#: The 10-fold driver test trains with this file; the others get a smoke
#: run of their own (each run costs seconds of interpreter start-up).
CROSSVAL_HPARAMS = os.path.join(RECIPE, "hparams", "relevance_2head.yaml")
SMOKE = [p for p in HPARAMS if p != CROSSVAL_HPARAMS]

#: Overrides that make a run tiny: 1 epoch, 0.3 s clips (31 frames),
#: 12 bands, a CNN-LSTM of a few thousand parameters.
TINY = [
    "--number_of_epochs=1",
    "--batch_size=16",
    "--num_workers=0",
    "--clip_duration=0.3",
    "--n_bands=12",
    "--conv_channels=2",
    "--lstm_size=8",
    "--lstm_layers=1",
    "--fc_size=8",
    "--noprogressbar",
]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (REPO, env.get("PYTHONPATH")) if p
    )
    return env


def _run(cmd, cwd):
    proc = subprocess.run(
        cmd, cwd=cwd, env=_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-5000:]}"
    )
    return proc


def _load(name, path):
    """Import a recipe script under a unique module name."""
    sys.path.insert(0, RECIPE)  # they import prepare_urbansound8k
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(RECIPE)
    return module


@pytest.fixture(scope="module")
def crossval():
    return _load("us8k_crossval", CROSSVAL)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("us8k_recipe")
    generate_synthetic_urbansound(
        str(root), clips_per_class_per_fold=1, seed=0, max_duration=0.3,
        min_duration=0.1,
    )
    return str(root)


def _read(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_doctests():
    for name, path in (("us8k_train", TRAIN), ("us8k_cv", CROSSVAL)):
        module = _load(name, path)
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        )
        assert result.failed == 0 and result.attempted > 0, name


@pytest.mark.parametrize(
    "hparams", HPARAMS, ids=[os.path.basename(p) for p in HPARAMS]
)
def test_frontend_gives_401_frames_for_4s(hparams, tmp_path):
    from hyperpyyaml import load_hyperpyyaml

    # The checkpointer creates its folder on loading: keep it in tmp_path.
    overrides = {"data_folder": "/nowhere", "test_fold": 1,
                 "output_folder": str(tmp_path)}
    with open(hparams, encoding="utf-8") as f:
        hp = load_hyperpyyaml(f, overrides)
    assert hp["sample_rate"] == 44100 and hp["clip_duration"] == 4.0
    assert (hp["win_length"], hp["hop_length"]) == (1102, 441)
    with torch.no_grad():
        feats = hp["compute_features"](torch.randn(1, 176400))
    assert feats.shape == (1, 401, 80)
    assert hp["classifier"].lstm.hidden_size == 256
    assert hp["number_of_epochs"] == 30 and hp["batch_size"] == 32


def test_every_hparams_file_gets_a_training_run():
    assert CROSSVAL_HPARAMS in HPARAMS and len(HPARAMS) >= 3
    assert set(SMOKE) | {CROSSVAL_HPARAMS} == set(HPARAMS)


@pytest.mark.parametrize(
    "hparams", SMOKE, ids=[os.path.basename(p) for p in SMOKE]
)
def test_smoke_hparams_file(hparams, data, tmp_path):
    """One tiny fold per file; patches for one of them, whole clips else."""
    name = os.path.splitext(os.path.basename(hparams))[0]
    patches = name == "cosgauss"
    out = str(tmp_path / "out")
    cmd = [
        sys.executable, TRAIN, hparams, f"--data_folder={data}",
        "--test_fold=4", f"--output_folder={out}", *TINY,
    ]
    if patches:
        cmd.append("--patch_frames=8")
    _run(cmd, cwd=str(tmp_path))

    fold = os.path.join(out, "fold4")
    res = _read(os.path.join(fold, "test_results.json"))
    # One decision per test clip of fold 4, and the valid fold is 3.
    assert res["n"] == 10
    assert sum(res["class_counts"].values()) == 10
    valid = _read(os.path.join(fold, "manifests", "valid.json"))
    assert {e["fold"] for e in valid.values()} == {3}
    train = _read(os.path.join(fold, "manifests", "train.json"))
    assert {e["fold"] for e in train.values()} == {1, 2, 5, 6, 7, 8, 9, 10}
    assert set(res["group_accuracy"]) <= {"foreground", "background"}
    with open(os.path.join(fold, "test_results.md"), encoding="utf-8") as f:
        assert TABLE2_COLUMNS in f.read()
    patch_file = os.path.join(fold, "test_results_patches.json")
    assert os.path.isfile(patch_file) == patches
    if patches:
        # 0.3 s -> 31 frames -> 4 patches of 8 frames per clip.
        assert _read(patch_file)["n"] == 40
        # Resume: without results and with one more epoch, the same
        # command continues from the epoch-1 checkpoint.
        for f in glob.glob(os.path.join(fold, "test_results*")):
            os.remove(f)
        again = [a for a in cmd if not a.startswith("--number_of_epochs")]
        _run([*again, "--number_of_epochs=2"], cwd=str(tmp_path))
        with open(os.path.join(fold, "train_log.txt"), encoding="utf-8") as f:
            log = f.read()
        assert len(re.findall(r"^epoch: 1, lr", log, re.M)) == 1
        assert len(re.findall(r"^epoch: 2, lr", log, re.M)) == 1
        assert os.path.isfile(os.path.join(fold, "test_results.json"))


def test_crossval_runs_all_ten_folds_and_aggregates(
    data, tmp_path, crossval, caplog
):
    out = str(tmp_path / "cv")
    args = [
        CROSSVAL_HPARAMS, f"--data_folder={data}", f"--output_folder={out}",
        *TINY,
    ]
    _run([sys.executable, CROSSVAL, *args], cwd=str(tmp_path))

    for k in range(1, 11):
        res = _read(os.path.join(out, f"fold{k}", "test_results.json"))
        assert res["n"] == 10
        test = _read(os.path.join(out, f"fold{k}", "manifests", "test.json"))
        assert {e["fold"] for e in test.values()} == {k}
    agg = _read(os.path.join(out, "crossval_results.json"))
    assert agg["folds"] == list(range(1, 11)) and agg["n"] == 100
    accs = list(agg["fold_accuracy"].values())
    assert agg["mean_accuracy"] == pytest.approx(sum(accs) / 10)
    mean = sum(accs) / 10
    sample = math.sqrt(sum((a - mean) ** 2 for a in accs) / 9)
    assert agg["std_accuracy"] == pytest.approx(sample)
    assert agg["std"] == "sample (n - 1)"
    assert "patch_fold_accuracy" not in agg  # whole clips
    with open(os.path.join(out, "crossval_results.md"), encoding="utf-8") as f:
        md = f.read()
    assert TABLE2_COLUMNS in md and "Cos-Gauss + 2head-rel." in md

    # Re-running finds every fold done: nothing is launched.
    def no_run(cmd):
        raise AssertionError(f"should have been skipped: {cmd}")

    caplog.set_level(logging.INFO, logger="crossval")
    agg2 = crossval.run_crossval(args, runner=no_run)
    assert agg2["mean_accuracy"] == pytest.approx(agg["mean_accuracy"])
    assert "other values" not in caplog.text
    # Other settings in the same output folder: reused, with a warning.
    crossval.run_crossval([*args, "--lr=0.5", "--folds", "3"], runner=no_run)
    assert "Fold 3 was run with other values of lr" in caplog.text


def _fake_summary(acc, confusion, labels=("a", "b")):
    return {
        "accuracy": acc,
        "confusion_matrix": confusion,
        "labels": list(labels),
        "n": sum(map(sum, confusion)),
    }


def test_aggregation_arithmetic(crossval):
    results = {
        1: _fake_summary(0.5, [[2, 0], [2, 0]]),
        2: _fake_summary(0.75, [[1, 1], [0, 2]]),
        3: _fake_summary(1.0, [[3, 0], [0, 1]]),
    }
    patch = {f: {"accuracy": a} for f, a in ((1, 0.4), (2, 0.6), (3, 0.8))}
    agg = crossval.aggregate_folds(results, patch)
    assert agg["mean_accuracy"] == pytest.approx(0.75)
    # Deviations -0.25, 0, 0.25: sample var 0.125 / 2, population / 3.
    assert agg["std_accuracy"] == pytest.approx(0.25)
    assert agg["population_std_accuracy"] == pytest.approx(
        math.sqrt(0.125 / 3)
    )
    assert agg["confusion_matrix"] == [[6, 1], [2, 3]]
    assert agg["class_accuracy"] == {
        "a": pytest.approx(6 / 7), "b": pytest.approx(3 / 5)
    }
    assert agg["class_average"] == pytest.approx((6 / 7 + 3 / 5) / 2)
    assert agg["pooled_accuracy"] == pytest.approx(9 / 12)
    assert agg["patch_mean_accuracy"] == pytest.approx(0.6)
    assert agg["patch_std_accuracy"] == pytest.approx(0.2)

    # A class absent from every test fold: NaN, left out of the average.
    lone = crossval.aggregate_folds({1: _fake_summary(1.0, [[2, 0], [0, 0]])})
    assert math.isnan(lone["class_accuracy"]["b"])
    assert lone["class_average"] == 1.0 and math.isnan(lone["std_accuracy"])
    with pytest.raises(ValueError, match="labels"):
        crossval.aggregate_folds({
            1: _fake_summary(1.0, [[1, 0], [0, 1]]),
            2: _fake_summary(1.0, [[1, 0], [0, 1]], labels=("b", "a")),
        })


def test_crossval_skips_folds_with_results(crossval, tmp_path):
    hparams = os.path.join(RECIPE, "hparams", "mel_baseline.yaml")
    out = tmp_path / "cv"
    labels = ["air_conditioner", "car_horn", "children_playing", "dog_bark",
              "drilling", "engine_idling", "gun_shot", "jackhammer", "siren",
              "street_music"]
    eye = [[int(i == j) for j in range(10)] for i in range(10)]

    def write_result(fold):
        folder = out / f"fold{fold}"
        folder.mkdir(parents=True, exist_ok=True)
        summary = _fake_summary(1.0, eye, labels)
        (folder / "test_results.json").write_text(json.dumps(summary))

    write_result(1)
    write_result(3)
    (out / "fold2").mkdir(parents=True)  # started, interrupted: no results
    launched = []

    def runner(cmd):
        fold = int(cmd[-1].split("=")[1])
        launched.append(fold)
        assert cmd[1] == TRAIN and cmd[2] == hparams
        assert "--data_folder=/data" in cmd and "--lr=0.01" in cmd
        write_result(fold)
        return 0

    agg = crossval.run_crossval(
        [hparams, "--data_folder=/data", f"--output_folder={out}",
         "--folds", "1", "2", "3", "--lr=0.01"],
        runner=runner,
    )
    assert launched == [2]
    assert agg["folds"] == [1, 2, 3] and agg["mean_accuracy"] == 1.0
    md = (out / "crossval_results.md").read_text()
    assert "Only 3 of 10 folds" in md and TABLE2_COLUMNS in md

    # A failing fold stops the run with an error naming it.
    with pytest.raises(RuntimeError, match="fold 4 failed"):
        crossval.run_crossval(
            [hparams, "--data_folder=/data", f"--output_folder={out}",
             "--folds", "4"],
            runner=lambda cmd: 3,
        )


def test_crossval_command_lines(crossval):
    cmd = crossval.fold_command(TRAIN, "h.yaml", 7, ["--lr=0.1"])
    assert cmd == [sys.executable, TRAIN, "h.yaml", "--lr=0.1",
                   "--test_fold=7"]
    ddp = crossval.fold_command(TRAIN, "h.yaml", 7, [], nproc_per_node=2,
                                distributed_backend="gloo")
    assert ddp[1:5] == ["-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=2"]
    assert ddp[-1] == "--distributed_backend=gloo"
    opts, rest = crossval.parse_args(
        ["h.yaml", "--nproc_per_node", "2", "--fold_folder=x", "--folds", "2"]
    )
    assert opts.nproc_per_node == 2 and opts.folds == [2]
    assert rest == ["--fold_folder=x"]
    with pytest.raises(SystemExit):
        crossval.parse_args(["h.yaml", "--test_fold=3"])
    with pytest.raises(SystemExit):
        crossval.parse_args(["h.yaml", "--folds", "0"])


@pytest.mark.parametrize(
    "hparams", HPARAMS, ids=[os.path.basename(p) for p in HPARAMS]
)
def test_every_yaml_key_is_used(hparams):
    with open(hparams, encoding="utf-8") as f:
        text = f.read()
    keys = re.findall(r"^([A-Za-z_]\w*):", text, re.M)
    sources = ""
    for path in [TRAIN, CROSSVAL, *SHARED_SOURCES]:
        with open(path, encoding="utf-8") as f:
            sources += f.read()
    unused = []
    for key in keys:
        if key.startswith("__"):  # executed when the file is loaded
            continue
        in_yaml = re.search(rf"<{key}[>\[]", text)
        in_code = re.search(rf"[\"'.]{key}\b", sources)
        if not (in_yaml or in_code):
            unused.append(key)
    assert not unused, f"unused keys in {os.path.basename(hparams)}: {unused}"


def test_cut_patches_respects_clip_lengths():
    train = _load("us8k_train_patches", TRAIN)
    x = torch.arange(2 * 31 * 3, dtype=torch.float32).view(2, 31, 3)
    patches, owner, plens = cut_patches(x, torch.tensor([1.0, 0.5]), 8)
    # Clip 0: 31 frames -> 8 + 8 + 8 + 7; clip 1: 16 real frames -> 8 + 8.
    assert owner.tolist() == [0, 0, 0, 0, 1, 1]
    assert plens.tolist() == pytest.approx([1, 1, 1, 7 / 8, 1, 1])
    assert torch.equal(patches[3, :7], x[0, 24:31])
    assert torch.equal(patches[3, 7], torch.zeros(3))
    assert torch.equal(patches[5], x[1, 8:16])
    assert train.default_folds(10) == {
        "train": [1, 2, 3, 4, 5, 6, 7, 8], "valid": [9], "test": [10]
    }
