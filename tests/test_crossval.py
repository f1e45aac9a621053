"""The recipe-independent cross-validation driver and the FSDD wrapper.

No training runs here: a fake ``runner`` stands in for ``train.py`` and
writes the fold results it would write.
"""

import importlib.util
import json
import math
import os
import sys

import pytest

from speechbrain_relevance.training import crossval as cv

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "FSDD"),
]
from prepare_fsdd import FSDD_SPEAKERS  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FSDD_CROSSVAL = os.path.join(REPO, "recipes", "FSDD", "crossval.py")
FSDD_TRAIN = os.path.join(REPO, "recipes", "FSDD", "train.py")
US8K_CROSSVAL = os.path.join(REPO, "recipes", "UrbanSound8k", "crossval.py")

DEFAULT_CAPTION_START = "Class-wise accuracy (%), pooled over the folds"

HPARAMS = """\
seed: 7
output_folder: !ref results/<seed>
test_fold: !PLACEHOLDER
fold_folder: !ref <output_folder>/speaker_<test_fold>
system_name: Toy net
lr: 0.1
labels: [zero, one]
model: !new:collections.OrderedDict
"""


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fsdd_cv():
    return _load("fsdd_crossval", FSDD_CROSSVAL)


@pytest.fixture
def hparams(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(HPARAMS)
    return str(path)


def _summary(correct, total):
    """A two-class ClassificationReport summary with ``correct`` right."""
    wrong = total - correct
    confusion = [[correct, wrong], [0, 0]]
    return {
        "accuracy": correct / total,
        "confusion_matrix": confusion,
        "labels": ["zero", "one"],
        "n": total,
    }


class FakeTrain:
    """Stands in for train.py: writes each fold's results, counts runs."""

    def __init__(self, out, train_script, correct, valid=None):
        self.out = out
        self.train_script = train_script
        self.correct = correct  # fold -> correct out of 4
        self.valid = valid or {}  # fold -> best validation accuracy
        self.launched = []

    def __call__(self, cmd):
        assert cmd[0] == sys.executable and cmd[1] == self.train_script
        assert cmd[-1].startswith("--test_fold=")
        fold = cmd[-1].split("=", 1)[1]
        self.launched.append(fold)
        folder = os.path.join(self.out, f"speaker_{fold}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, cv.RESULTS_FILE), "w") as f:
            json.dump(_summary(self.correct[fold], 4), f)
        if fold in self.valid:
            with open(os.path.join(folder, cv.VALID_RESULTS_FILE), "w") as f:
                json.dump({"accuracy": self.valid[fold], "epoch": 3}, f)
        return 0


def _read(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_string_folds_run_skip_and_aggregate(hparams, tmp_path):
    out = str(tmp_path / "out")
    driver = cv.CrossValidation("train.py", ["ann", "bob", "cy"], "Toy")
    fake = FakeTrain(
        out, "train.py", {"ann": 4, "bob": 2, "cy": 3},
        valid={"ann": 0.9, "bob": 0.8, "cy": 0.7},
    )
    args = [hparams, f"--output_folder={out}", "--lr=0.5"]
    # Two folds first: flagged as not the full protocol.
    agg = driver.run([*args, "--folds", "cy", "ann"], runner=fake)
    assert fake.launched == ["cy", "ann"]
    assert agg["folds"] == ["ann", "cy"]
    md = (tmp_path / "out" / "crossval_results.md").read_text()
    assert md.startswith("# Toy cross-validation: Toy net\n")
    assert "- Only 2 of 3 folds: not the full protocol" in md

    # All folds: only the missing one runs.
    agg = driver.run(args, runner=fake)
    assert fake.launched == ["cy", "ann", "bob"]
    assert agg["folds"] == ["ann", "bob", "cy"]
    assert agg["fold_accuracy"] == {"ann": 1.0, "bob": 0.5, "cy": 0.75}
    assert agg["mean_accuracy"] == pytest.approx(0.75)
    assert agg["std_accuracy"] == pytest.approx(0.25)
    assert agg["pooled_accuracy"] == pytest.approx(9 / 12)
    assert agg["mean_valid_accuracy"] == pytest.approx(0.8)

    data = _read(os.path.join(out, "crossval_results.json"))
    assert data["folds"] == ["ann", "bob", "cy"]
    assert data["fold_accuracy"] == {"ann": 1.0, "bob": 0.5, "cy": 0.75}
    assert data["fold_valid_accuracy"] == {"ann": 0.9, "bob": 0.8, "cy": 0.7}
    assert data["mean_valid_accuracy"] == pytest.approx(0.8)
    assert data["system_name"] == "Toy net"
    assert data["std"] == "sample (n - 1)"
    # Class "one" has no test clips: NaN in memory, null in the JSON.
    assert math.isnan(agg["class_accuracy"]["one"])
    assert data["class_accuracy"]["one"] is None
    md = (tmp_path / "out" / "crossval_results.md").read_text()
    assert "Only" not in md
    assert "- Mean validation accuracy of the tested models (%): 80.0" in md
    assert "| Fold | Accuracy (%) | Best valid acc. (%) |" in md
    assert "| bob | 50.0 | 80.0 |" in md
    assert DEFAULT_CAPTION_START in md

    # Everything done: nothing is launched.
    def no_run(cmd):
        raise AssertionError(f"should have been skipped: {cmd}")

    assert driver.run(args, runner=no_run)["folds"] == ["ann", "bob", "cy"]


def test_mean_valid_accuracy_needs_every_fold(hparams, tmp_path):
    out = str(tmp_path / "out")
    driver = cv.CrossValidation("t.py", ["ann", "bob"], "Toy")
    fake = FakeTrain(out, "t.py", {"ann": 4, "bob": 2}, valid={"ann": 0.9})
    agg = driver.run([hparams, f"--output_folder={out}"], runner=fake)
    assert agg["mean_valid_accuracy"] is None
    assert agg["fold_valid_accuracy"] == {"ann": 0.9, "bob": None}
    data = _read(os.path.join(out, "crossval_results.json"))
    assert data["mean_valid_accuracy"] is None
    md = (tmp_path / "out" / "crossval_results.md").read_text()
    assert "missing for 1 fold(s): no mean" in md
    assert "| bob | 50.0 | - |" in md

    # No fold wrote one: the key is there, None, and the markdown is silent.
    agg = cv.aggregate_folds({"ann": _summary(1, 2)})
    assert agg["mean_valid_accuracy"] is None
    md = cv.to_markdown(agg)
    assert "best validation" not in md.lower() and "valid acc" not in md


def test_load_valid_accuracy_rejects_junk(tmp_path):
    path = tmp_path / cv.VALID_RESULTS_FILE
    for text in ("not json", "[0.5]", '{"acc": 0.5}', '{"accuracy": "high"}',
                 '{"accuracy": NaN}', '{"accuracy": true}'):
        path.write_text(text)
        assert cv.load_valid_accuracy(str(tmp_path)) is None, text
    path.write_text('{"accuracy": 1}')
    assert cv.load_valid_accuracy(str(tmp_path)) == 1.0


def test_fold_names_are_checked(hparams, tmp_path):
    for bad in (["null"], ["yes"], ["1.5"], [True], ["a", "a"], [],
                ["007"], [None]):
        with pytest.raises(ValueError):
            cv.CrossValidation("t.py", bad, "X")
    driver = cv.CrossValidation("t.py", ["ann", "bob"], "X")
    for argv in (["h.yaml", "--folds", "eve"], ["h.yaml", "--folds", "ann",
                 "ann"], ["h.yaml", "--test_fold=ann"]):
        with pytest.raises(SystemExit):
            driver.parse_args(argv)
    with pytest.raises(ValueError, match="the folds are ann, bob"):
        driver.match_folds(["ann", "eve"])
    ints = cv.CrossValidation("t.py", range(1, 4), "X")
    assert ints.match_folds(["3", "01"]) == [3, 1]
    # The fold folder resolves with the string name, as train.py sees it.
    settings = cv.read_settings(hparams, "output_folder: o", "bob")
    assert settings["fold_folder"] == "o/speaker_bob"
    assert settings["test_fold"] == "bob" and settings["model"] is None


def test_failures_name_the_fold(hparams, tmp_path):
    out = str(tmp_path / "out")
    driver = cv.CrossValidation("t.py", ["ann", "bob"], "X")
    args = [hparams, f"--output_folder={out}", "--folds", "bob"]
    with pytest.raises(RuntimeError, match="fold bob failed"):
        driver.run(args, runner=lambda cmd: 3)
    with pytest.raises(RuntimeError, match="fold bob finished but"):
        driver.run(args, runner=lambda cmd: 0)
    assert driver.main(args) == 1


def test_fsdd_wrapper(fsdd_cv, hparams, tmp_path):
    assert fsdd_cv.CROSSVAL.folds == FSDD_SPEAKERS
    assert fsdd_cv.TRAIN_SCRIPT == FSDD_TRAIN
    cmd = cv.fold_command(fsdd_cv.TRAIN_SCRIPT, "h.yaml", "theo", ["--lr=1"])
    assert cmd == [sys.executable, FSDD_TRAIN, "h.yaml", "--lr=1",
                   "--test_fold=theo"]
    opts, rest = fsdd_cv.parse_args(["h.yaml", "--data_folder=d"])
    assert opts.folds == list(FSDD_SPEAKERS) and rest == ["--data_folder=d"]
    for bad in ("bob", "1", "Theo"):
        with pytest.raises(SystemExit):
            fsdd_cv.parse_args(["h.yaml", "--folds", bad])
    # The driver never imports the training script.
    with open(FSDD_CROSSVAL, encoding="utf-8") as f:
        assert "import train" not in f.read()

    out = str(tmp_path / "out")
    fake = FakeTrain(out, FSDD_TRAIN, {"theo": 3, "lucas": 4},
                     valid={"theo": 0.5, "lucas": 1.0})
    agg = fsdd_cv.run_crossval(
        [hparams, f"--output_folder={out}", "--folds", "theo", "lucas"],
        runner=fake,
    )
    assert fake.launched == ["theo", "lucas"]
    assert agg["folds"] == ["lucas", "theo"]
    assert agg["mean_valid_accuracy"] == pytest.approx(0.75)
    md = (tmp_path / "out" / "crossval_results.md").read_text()
    assert md.startswith(
        "# FSDD leave-one-speaker-out cross-validation: Toy net"
    )
    assert "- Only 2 of 6 folds" in md and "Digit-wise accuracy" in md


def test_urbansound_wrapper_keeps_its_protocol():
    us8k = _load("us8k_crossval_generic", US8K_CROSSVAL)
    assert us8k.CROSSVAL.folds == tuple(range(1, 11)) and us8k.N_FOLDS == 10
    assert us8k.aggregate_folds is cv.aggregate_folds
    assert us8k.parse_args(["h.yaml"])[0].folds == list(range(1, 11))
    agg = cv.aggregate_folds({1: _summary(1, 2)})
    md = cv.to_markdown(agg, "Mel", **us8k.CROSSVAL.markdown_options())
    assert md.startswith("# UrbanSound8k cross-validation: Mel")
    assert "(paper Table 2;\nAvg is the mean" in md


def test_progress_lines_count_folds_and_time_left(hparams, tmp_path, caplog):
    out = str(tmp_path / "out")
    driver = cv.CrossValidation("train.py", ["ann", "bob", "cy"], "Toy")
    fake = FakeTrain(out, "train.py", {"ann": 4, "bob": 2, "cy": 3})
    args = [hparams, f"--output_folder={out}"]
    driver.run([*args, "--folds", "bob"], runner=fake)
    caplog.clear()
    with caplog.at_level("INFO", logger=cv.logger.name):
        driver.run(args, runner=fake)
    done = [r.getMessage() for r in caplog.records
            if " done in " in r.getMessage()]
    # bob's results were on disk: two folds trained, counted among three.
    assert [d.split(" done")[0] for d in done] == [
        "fold 1/3 (ann)", "fold 3/3 (cy)"
    ]
    assert done[0].endswith("min left") and "about" in done[0]
    assert done[1].endswith("0 folds left")
    assert any(r.getMessage().startswith("Fold 1/3 (ann): ")
               for r in caplog.records)
