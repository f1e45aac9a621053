"""Settings that cannot work stop the run in one line (issue 29, 3 and 4).

Numbers reach no object unchecked (one table, ``speechbrain_relevance.
checks``, used by every recipe's ``train.py`` and by the cross-validation
drivers before their first fold), run options are checked, class names
must fit the classes, and keys nothing reads are warned about.
"""

import glob
import importlib.util
import logging
import os
import shutil
import subprocess
import sys

import pytest
import speechbrain as sb
import torch

from speechbrain_relevance import checks
from speechbrain_relevance.cli import load_hparams
from speechbrain_relevance.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = os.path.join(ROOT, "recipes")
FSDD_DATA = os.path.join(ROOT, "tests", "data", "fsdd")
YAMLS = sorted(glob.glob(os.path.join(RECIPES, "**", "*.yaml"),
                         recursive=True))


def _yaml(recipe, name):
    return os.path.join(RECIPES, recipe, "hparams", f"{name}.yaml")


#: What each recipe's yaml needs besides the overrides under test.
NEEDED = {
    "DCASE2020": "data_folder: /data",
    "UrbanSound8k": "data_folder: /data\ntest_fold: 1",
    "FSDD": "data_folder: /data\ntest_fold: theo",
}


@pytest.mark.parametrize(
    "recipe, system, override, needle",
    [
        ("DCASE2020", "relevance_2head", "lr: fast", "lr='fast' must be a "
         "number > 0"),
        ("DCASE2020", "relevance_2head", "lr: -0.001", "lr=-0.001 must be"),
        ("DCASE2020", "mel_baseline", "weight_decay: -1", "weight_decay=-1"),
        ("FSDD", "relevance_2head", "label_smoothing: abc",
         "label_smoothing='abc' must be a number in [0, 1)"),
        ("FSDD", "mel_baseline", "label_smoothing: 2", "label_smoothing=2"),
        ("DCASE2020", "relevance_2head", "crop_frames: -5",
         "crop_frames=-5 must be an integer >= 1"),
        ("DCASE2020", "cosgauss", "crop_frames: 0", "crop_frames=0"),
        ("UrbanSound8k", "relevance_2head", "patch_frames: -1",
         "patch_frames=-1 must be an integer >= 1 (or null)"),
        ("FSDD", "cosgauss", "num_workers: -1", "num_workers=-1"),
        ("UrbanSound8k", "mel_baseline", "labels: [a, b, c]",
         "labels has 3 names for n_classes=10"),
        ("FSDD", "relevance_2head", "number_of_epochs: -1",
         "number_of_epochs=-1 must be an integer >= 0"),
        ("FSDD", "relevance_2head", "number_of_epochs: 1.5",
         "number_of_epochs=1.5"),
        ("DCASE2020", "relevance_2head", "mixup_alpha: -0.4",
         "mixup_alpha=-0.4 must be a number >= 0 (0 turns mixup off)"),
        ("FSDD", "relevance_2head", "max_batch_length: 0",
         "max_batch_length=0 must be a number > 0"),
        ("FSDD", "mel_baseline", "ddp_timeout_s: 0", "ddp_timeout_s=0"),
        ("UrbanSound8k", "cosgauss", "ddp_timeout_s: soon",
         "ddp_timeout_s='soon'"),
        ("FSDD", "relevance_2head", "labels: ['0', '0', '1', '2', '3', '4', "
         "'5', '6', '7', '8']", "labels names 0 more than once"),
    ],
)
def test_bad_number_is_refused_naming_the_key(recipe, system, override,
                                              needle):
    path = _yaml(recipe, system)
    with pytest.raises(ConfigError) as info:
        load_hparams(path, f"{NEEDED[recipe]}\n{override}")
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert needle in message, message
    assert "\n" not in message
    # Named before any object is built (the scheduler would name itself).
    assert "lr_scheduler" not in message


@pytest.mark.parametrize(
    "recipe, system, override",
    [
        ("FSDD", "relevance_2head", "lr: 1e-3"),
        ("FSDD", "relevance_2head", "frontend_lr: 0.01"),
        ("DCASE2020", "relevance_2head", "mixup_alpha: 0"),
        ("UrbanSound8k", "relevance_2head", "patch_frames: 51"),
        ("FSDD", "mel_baseline", "number_of_epochs: 0"),
    ],
)
def test_good_numbers_pass(recipe, system, override):
    settings = checks.plain_settings(
        open(_yaml(recipe, system), encoding="utf-8").read(),
        f"{NEEDED[recipe]}\n{override}",
    )
    checks.check_settings(settings)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--ckpt_interval_steps=-1"], "--ckpt_interval_steps=-1 must be an "
         "integer >= 0"),
        (["--ckpt_interval_minutes=-2"], "--ckpt_interval_minutes=-2 must"),
        (["--grad_accumulation_factor=0"], "--grad_accumulation_factor=0"),
        (["--device=gpu"], "--device=gpu is not a device"),
    ],
)
def test_bad_run_option_is_refused(argv, needle):
    _, run_opts, _ = sb.parse_arguments(["h.yaml", *argv])
    with pytest.raises(ConfigError, match=None) as info:
        checks.check_run_opts(run_opts)
    assert needle in str(info.value)


def test_run_options_left_at_their_defaults_pass():
    _, run_opts, _ = sb.parse_arguments(["h.yaml", "--device=cpu"])
    checks.check_run_opts(run_opts)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_cuda_without_a_gpu_is_refused():
    _, run_opts, _ = sb.parse_arguments(["h.yaml", "--device=cuda"])
    with pytest.raises(ConfigError, match="--device=cuda: no CUDA GPU"):
        checks.check_run_opts(run_opts)


def test_misspelt_key_in_a_yaml_is_warned_about(tmp_path, caplog):
    text = open(_yaml("FSDD", "cosgauss"), encoding="utf-8").read()
    text = text.replace(
        "\nnumber_of_epochs:", "\nnumbr_of_epochs: 1\nnumber_of_epochs:", 1
    )
    assert "numbr_of_epochs" in text
    path = tmp_path / "cosgauss.yaml"
    path.write_text(text)
    with caplog.at_level(logging.WARNING):
        load_hparams(str(path), NEEDED["FSDD"])
    warned = [r.getMessage() for r in caplog.records
              if r.name == "speechbrain_relevance.checks"]
    assert len(warned) == 1, warned
    assert str(path) in warned[0]
    assert "numbr_of_epochs" in warned[0]
    assert "did you mean number_of_epochs?" in warned[0]


@pytest.mark.parametrize(
    "path", YAMLS, ids=[os.path.relpath(p, RECIPES) for p in YAMLS]
)
def test_shipped_yamls_have_no_unread_key(path):
    assert checks.unread_keys(open(path, encoding="utf-8").read()) == []


def test_every_key_said_to_be_read_is_read_somewhere():
    """READ_BY_CODE names only keys a script or the package reads."""
    sources = ""
    for pattern in ("speechbrain_relevance/**/*.py", "recipes/**/*.py"):
        for path in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            if not path.endswith("checks.py"):
                sources += open(path, encoding="utf-8").read()
    # train_ecapa.py reads hparams[f"{split}_annotation"].
    spelt_out = {
        f"{split}_annotation" for split in ("train", "valid", "test")
        if '_annotation"]' in sources
    }
    unread = [
        key for key in checks.READ_BY_CODE - spelt_out
        if f'"{key}"' not in sources and f".{key}" not in sources
    ]
    assert not unread, unread


# One line, exit status 1, no traceback: train.py and crossval.py as users
# run them.


def _run(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, env.get("PYTHONPATH")) if p
    )
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=300,
    )


def _one_line(proc, prog):
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert errors[0].startswith(f"{prog}: error: "), errors
    return errors[0]


def test_train_py_names_number_of_epochs(tmp_path):
    proc = _run(
        ["train.py", "hparams/relevance_2head.yaml",
         f"--data_folder={FSDD_DATA}", "--test_fold=theo",
         f"--output_folder={tmp_path}", "--number_of_epochs=-1"],
        os.path.join(RECIPES, "FSDD"),
    )
    line = _one_line(proc, "train.py")
    assert "number_of_epochs=-1" in line
    assert not list(tmp_path.iterdir())  # nothing was prepared


def test_crossval_checks_before_the_first_fold(tmp_path):
    cwd = os.path.join(RECIPES, "FSDD")
    proc = _run(
        ["crossval.py", "hparams/mel_baseline.yaml",
         f"--data_folder={FSDD_DATA}", "--folds", "theo", "--foo=1",
         f"--output_folder={tmp_path}"],
        cwd,
    )
    line = _one_line(proc, "crossval.py")
    assert "--foo: no such key to override" in line
    assert not (tmp_path / "fold_theo").exists()
    proc = _run(
        ["crossval.py", "hparams/mel_baseline.yaml", "--folds", "theo",
         f"--output_folder={tmp_path}"],
        cwd,
    )
    line = _one_line(proc, "crossval.py")
    assert "data_folder has no value: give --data_folder=..." in line


def _crossval(recipe):
    folder = os.path.join(RECIPES, recipe)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(
            f"{recipe.lower()}_crossval_checks",
            os.path.join(folder, "crossval.py"),
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


@pytest.mark.parametrize(
    "recipe, args, needle",
    [
        ("FSDD", ["--foo=1"], "--foo: no such key to override"),
        ("FSDD", ["--lr=fast"], "lr='fast' must be a number > 0"),
        ("FSDD", ["--device=gpu"], "--device=gpu is not a device"),
        ("UrbanSound8k", ["--foo=1"], "--foo: no such key to override"),
        ("UrbanSound8k", ["--patch_frames=-1"], "patch_frames=-1"),
    ],
)
def test_crossval_drivers_apply_train_py_checks(recipe, args, needle,
                                                tmp_path, capsys):
    module = _crossval(recipe)
    fold = "theo" if recipe == "FSDD" else "3"
    ran = []
    argv = [_yaml(recipe, "mel_baseline"), f"--data_folder={tmp_path}",
            "--folds", fold, f"--output_folder={tmp_path / 'out'}", *args]
    with pytest.raises(ConfigError, match=None) as info:
        module.CROSSVAL.run(argv, runner=ran.append)
    assert needle in str(info.value)
    assert ran == []
    capsys.readouterr()
    assert module.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_checks_run_on_a_copied_yaml_too(tmp_path):
    # A user's own copy of a recipe yaml gets the same checks.
    path = tmp_path / "mine.yaml"
    shutil.copy(_yaml("FSDD", "cosgauss"), path)
    with pytest.raises(ConfigError, match="num_workers=-1"):
        load_hparams(str(path), f"{NEEDED['FSDD']}\nnum_workers: -1")
