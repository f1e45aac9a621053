"""Bad input found by trying the recipes as a new user would (issue #10).

Each case ends with a clear error that names the file or option, before
any training where the problem can be seen then.
"""

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from speechbrain_relevance.data.audio import audio_info
from speechbrain_relevance.errors import AudioFileError, ManifestError
from speechbrain_relevance.pipeline import ClipPolicy

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "DCASE2020"),
    os.path.join(_RECIPES, "UrbanSound8k"),
]
import synthetic_dcase2020 as synthetic_dcase  # noqa: E402
import synthetic_urbansound8k as synthetic_urbansound  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DCASE = os.path.join(ROOT, "recipes", "DCASE2020")
US8K = os.path.join(ROOT, "recipes", "UrbanSound8k")


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(path))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(os.path.dirname(path))
    return module


@pytest.fixture(scope="module")
def dcase_prep():
    return load_module(
        os.path.join(DCASE, "prepare_dcase2020.py"), "prepare_dcase2020"
    )


@pytest.fixture(scope="module")
def dcase_train():
    return load_module(os.path.join(DCASE, "train.py"), "dcase_train_rel")


@pytest.fixture(scope="module")
def dcase_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dcase")
    return synthetic_dcase.generate_synthetic_dcase(
        str(root), n_cities=2, n_locations_per_city=2,
        n_segments_per_location=1, duration=0.3,
        scenes=("bus", "park", "tram"), devices=("a", "b"), seed=3,
    )


@pytest.fixture
def dcase_copy(dcase_data, tmp_path):
    dst = os.path.join(str(tmp_path), "data", synthetic_dcase.DATASET_DIRNAME)
    shutil.copytree(dcase_data, dst)
    return dst


def tsv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def train_wavs(folder):
    rows = tsv_rows(os.path.join(folder, "evaluation_setup",
                                 "fold1_train.csv"))
    return [os.path.join(folder, r["filename"]) for r in rows]


# 1. Empty splits


def test_header_only_evaluate_csv_stops_preparation(dcase_prep, dcase_copy,
                                                     tmp_path):
    path = os.path.join(dcase_copy, "evaluation_setup", "fold1_evaluate.csv")
    with open(path, encoding="utf-8") as f:
        header = f.readline()
    with open(path, "w", encoding="utf-8") as f:
        f.write(header)
    with pytest.raises(dcase_prep.DatasetError) as info:
        dcase_prep.prepare_dcase2020(dcase_copy, str(tmp_path / "m"))
    assert info.value.problems == [(path, "no usable test clips")]


def test_empty_validation_split_is_named(dcase_prep, dcase_train, dcase_copy,
                                         tmp_path):
    paths = dcase_prep.prepare_dcase2020(
        dcase_copy, str(tmp_path / "m"), valid_locations_fraction=0
    )
    hparams = {
        "sample_rate": 44100, "labels": ["bus", "park", "tram"],
        "pipeline": SimpleNamespace(clip_policy=ClipPolicy(44100)),
    }
    with pytest.raises(ManifestError) as info:
        dcase_train.dataio_prep(hparams, paths)
    message = str(info.value)
    assert paths["valid"] in message
    assert "valid split is empty" in message
    assert "--valid_locations_fraction" in message


# 2. NaN audio, and 6. truncated and near-empty clips


def test_bad_samples_stop_dcase_preparation_by_default(
    dcase_prep, dcase_copy, tmp_path
):
    nan_wav, cut_wav, tiny_wav = train_wavs(dcase_copy)[:3]
    x, rate = sf.read(nan_wav)
    x[len(x) // 3] = np.inf
    sf.write(nan_wav, x, rate, subtype="FLOAT")
    data = open(cut_wav, "rb").read()
    open(cut_wav, "wb").write(data[: len(data) // 2])
    sf.write(tiny_wav, np.full(10, 0.1), rate)

    with pytest.raises(dcase_prep.DatasetError) as info:
        # check_audio="full" is what every recipe yaml sets.
        dcase_prep.prepare_dcase2020(dcase_copy, str(tmp_path / "m"),
                                     check_audio="full")
    problems = dict(info.value.problems)
    assert problems[nan_wav] == "audio holds NaN or infinite samples"
    assert problems[cut_wav].startswith("truncated: the header declares")
    assert "shorter than one" in problems[tiny_wav]
    # Headers alone catch the truncated and the too short clip.
    with pytest.raises(dcase_prep.DatasetError) as info:
        dcase_prep.prepare_dcase2020(dcase_copy, str(tmp_path / "h"),
                                     check_audio="header")
    assert sorted(dict(info.value.problems)) == sorted([cut_wav, tiny_wav])


def test_nan_clip_read_in_training_names_the_file(
    dcase_prep, dcase_train, dcase_copy, tmp_path
):
    nan_wav = train_wavs(dcase_copy)[0]
    x, rate = sf.read(nan_wav)
    x[5] = np.nan
    sf.write(nan_wav, x, rate, subtype="FLOAT")
    # Headers only: the file passes preparation...
    paths = dcase_prep.prepare_dcase2020(dcase_copy, str(tmp_path / "m"),
                                         check_audio="header")
    hparams = {
        "sample_rate": 44100, "labels": ["bus", "park", "tram"],
        "pipeline": SimpleNamespace(clip_policy=ClipPolicy(44100)),
    }
    stem = os.path.splitext(os.path.basename(nan_wav))[0]
    data = next(
        d for d in dcase_train.dataio_prep(hparams, paths).values()
        if stem in d.data_ids
    )
    index = data.data_ids.index(stem)
    # ...and is named as soon as it is read.
    with pytest.raises(AudioFileError, match="NaN or infinite") as info:
        data[index]
    assert info.value.path == nan_wav


def test_short_clips_are_warned_about(dcase_prep, dcase_copy, tmp_path,
                                      caplog):
    dcase_prep.prepare_dcase2020(dcase_copy, str(tmp_path / "m"))
    warned = [r.getMessage() for r in caplog.records
              if "much shorter than the 10 s" in r.getMessage()]
    # The synthetic clips last 0.3 s: one summary line, not one per clip.
    assert len(warned) == 1
    assert "0.300 s long" in warned[0]


# 4. Stale UrbanSound8k manifests


def test_urbansound_manifests_follow_the_csv(tmp_path):
    prep = load_module(os.path.join(US8K, "prepare_urbansound8k.py"),
                       "prepare_urbansound8k")
    us8k = synthetic_urbansound.generate_synthetic_urbansound(
        str(tmp_path / "d"), clips_per_class_per_fold=1, seed=0,
        max_duration=0.2, min_duration=0.1,
    )
    folds = {"train_folds": [1], "valid_folds": [2], "test_folds": [10]}
    save = str(tmp_path / "m")
    paths = prep.prepare_urbansound8k(us8k, save, **folds)
    before = json.load(open(paths["test"]))
    csv_path = os.path.join(us8k, "metadata", "UrbanSound8K.csv")
    stat = os.stat(csv_path)
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
        fields = list(rows[0])
    removed = next(r for r in rows if r["fold"] == "10")
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(r for r in rows if r is not removed)
    os.utime(csv_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = json.load(open(prep.prepare_urbansound8k(us8k, save,
                                                     **folds)["test"]))
    stem = os.path.splitext(removed["slice_file_name"])[0]
    assert stem in before
    assert stem not in after
    assert len(after) == len(before) - 1


# 5. A batch larger than the training set, and 8. one-line CLI errors


def run_script(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_batch_larger_than_train_set_stops_before_training(dcase_data,
                                                            tmp_path):
    out = tmp_path / "run"
    proc = run_script(
        ["train.py", "hparams/mel_baseline.yaml",
         f"--data_folder={dcase_data}", f"--output_folder={out}",
         "--batch_size=1000", "--num_workers=0", "--device=cpu",
         "--number_of_epochs=1"],
        DCASE,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "batch_size 1000 is larger than the" in proc.stderr
    assert not (out / "test_results.json").exists()


def test_prepare_cli_errors_are_one_line(tmp_path):
    missing = str(tmp_path / "nowhere")
    proc = run_script(
        ["prepare_urbansound8k.py", f"--data_folder={missing}",
         f"--save_folder={tmp_path}", "--train_folds", "1",
         "--valid_folds", "2", "--test_folds", "3"],
        US8K,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("prepare_urbansound8k.py: error: ")
    assert f"{missing}: neither it nor" in proc.stderr


def test_directory_given_as_audio_is_called_a_directory(tmp_path):
    folder = tmp_path / "clip.wav"
    folder.mkdir()
    with pytest.raises(AudioFileError, match="is a directory"):
        audio_info(str(folder))


def test_yamls_say_spectral_mode_ignores_padding():
    import glob

    for path in glob.glob(os.path.join(ROOT, "recipes", "*", "hparams",
                                       "*.yaml")):
        text = open(path).read()
        if "frontend_padding:" in text and "frontend_mode: spectral" in text:
            assert '"spectral" ignores it' in text, path


def test_missing_meta_column_is_one_problem(dcase_prep, dcase_copy, tmp_path):
    meta = os.path.join(dcase_copy, "meta.csv")
    rows = open(meta).read().splitlines()
    cut = [r.rsplit("\t", 1)[0] for r in rows]  # drop source_label
    open(meta, "w").write("\n".join(cut) + "\n")
    with pytest.raises(dcase_prep.DatasetError) as info:
        dcase_prep.prepare_dcase2020(dcase_copy, str(tmp_path / "m"))
    assert len(info.value.problems) == 1
    path, reason = info.value.problems[0]
    assert path == meta and "source_label" in reason


def test_refused_checkpoint_names_its_file(tmp_path):
    import torch

    from speechbrain_relevance.errors import CheckpointFileError
    from speechbrain_relevance.inference import load_module_weights

    path = tmp_path / "classifier.ckpt"
    torch.save({"weight": torch.zeros(1), "hook": print}, path)
    with pytest.raises(CheckpointFileError) as info:
        load_module_weights(torch.nn.Linear(1, 1), path)
    assert str(path) in str(info.value)
    assert "more than tensors" in str(info.value)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointFileError, match="unreadable checkpoint"):
        load_module_weights(torch.nn.Linear(1, 1), path)


# Issue #18: configuration mistakes end in one line; nothing degrades
# silently.


def run_dcase_main(dcase_train, args, capsys):
    """Run the DCASE recipe's command line in-process: (status, stderr)."""
    from speechbrain_relevance.cli import run_main

    capsys.readouterr()
    try:
        run_main(dcase_train.main, args, prog="train.py")
        status = 0
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize(
    "override, key",
    [
        ("--no_such_key=1", "no_such_key"),
        ("--number_of_epochs=abc", "number_of_epochs"),
        ("--n_heads=3", "n_heads"),
        ("--context=-1", "context"),
        ("--win_length=25", "win_length"),
        ("--split=[40, 20]", "split"),
    ],
)
def test_config_mistake_is_one_line_naming_the_key(
    dcase_train, dcase_data, tmp_path, capsys, override, key
):
    status, err = _in_dcase(lambda: run_dcase_main(
        dcase_train,
        ["hparams/relevance_2head.yaml", f"--data_folder={dcase_data}",
         f"--output_folder={tmp_path / 'run'}", "--device=cpu", override],
        capsys,
    ))
    assert status == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("train.py: error: ")
    assert key in lines[0]


def _in_dcase(fn):
    cwd = os.getcwd()
    os.chdir(DCASE)
    try:
        return fn()
    finally:
        os.chdir(cwd)


def test_n_heads_hint_comes_from_the_real_bands_and_key():
    from speechbrain_relevance.cli import load_hparams
    from speechbrain_relevance.errors import ConfigError

    # The FSDD yaml has 40 bands, and the head split is its head_split
    # (its split is the data split).
    with pytest.raises(ConfigError) as info:
        load_hparams(
            os.path.join(ROOT, "recipes", "FSDD", "hparams",
                         "relevance_2head.yaml"),
            "data_folder: /x\ntest_fold: theo\nn_heads: 3",
        )
    message = str(info.value)
    assert "head_split=[14, 13, 13]" in message
    assert "27, 27, 26" not in message
    assert "1, 2, 4, 5, 8, 10, 20, 40" in message


@pytest.mark.parametrize(
    "override, needle",
    [
        ("--batch_size=-1", "batch_size"),
        ("--number_of_epochs=-1", "number_of_epochs"),
        ("--number_of_epochs=0", "no checkpoint"),
    ],
)
def test_runs_that_would_train_nothing_stop_first(
    dcase_data, tmp_path, override, needle
):
    # A subprocess: these runs get as far as SpeechBrain's logging setup.
    out = tmp_path / "run"
    proc = run_script(
        ["train.py", "hparams/mel_baseline.yaml",
         f"--data_folder={dcase_data}", f"--output_folder={out}",
         "--device=cpu", "--num_workers=0", "--batch_size=2", override],
        DCASE,
    )
    status, err = proc.returncode, proc.stderr
    assert status == 1, err[-2000:]
    assert "Traceback" not in err
    # (SpeechBrain's import may print a note about torchvision first.)
    last = err.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and needle in last, err
    assert err.count("error:") == 1
    assert not (out / "test_results.json").exists()


def test_evaluation_only_is_said_in_the_log(tmp_path, caplog):
    import torch
    from speechbrain.utils.epoch_loop import EpochCounter

    from speechbrain_relevance.training import AtomicCheckpointer
    from speechbrain_relevance.training.brain import check_epochs

    ckpter = AtomicCheckpointer(str(tmp_path),
                                {"model": torch.nn.Linear(1, 1)})
    ckpter.save_checkpoint(meta={"epoch": 3, "acc": 0.5})
    hparams = {"number_of_epochs": 0, "epoch_counter": EpochCounter(0),
               "checkpointer": ckpter}
    with caplog.at_level("INFO"):
        assert check_epochs(hparams) == 0
    said = [r.getMessage() for r in caplog.records]
    assert any("evaluating it only" in m and "number_of_epochs=0" in m
               for m in said), said


def test_resumed_epoch_is_logged_once(tmp_path):
    from speechbrain.utils.train_logger import FileTrainLogger

    from speechbrain_relevance.training.brain import drop_stale_epoch_lines

    log = FileTrainLogger(str(tmp_path / "train_log.txt"))
    for epoch in (1, 2):
        log.log_stats({"epoch": epoch}, train_stats={"loss": 1.0})
    # Killed after epoch 2's line, before its checkpoint: the resumed run
    # trains epoch 2 again and logs it.
    assert drop_stale_epoch_lines(log, 2) == 1
    log.log_stats({"epoch": 2}, train_stats={"loss": 0.5})
    text = (tmp_path / "train_log.txt").read_text()
    assert [line.split(" - ")[0] for line in text.splitlines()] == [
        "epoch: 1", "epoch: 2"]
    assert "loss: 5.00e-01" in text


def test_random_checkpoint_bytes_name_the_file(tmp_path):
    from speechbrain_relevance.errors import CheckpointFileError
    from speechbrain_relevance.training.checkpoints import load_checkpoint_file

    # This seed made torch fail with "IndexError: pop from empty list".
    path = tmp_path / "classifier.ckpt"
    path.write_bytes(np.random.default_rng(17).bytes(110389))
    with pytest.raises(CheckpointFileError) as info:
        load_checkpoint_file(path)
    assert str(path) in str(info.value)
    assert "unreadable checkpoint" in str(info.value)


class _Mkdir:
    """Unpickling this calls os.mkdir (posix.mkdir): proof that code ran.

    torch 2.11 words the refusal of a global from ``posix`` differently
    from that of a builtin (issue #18).
    """

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("zipped", [True, False])
def test_code_in_a_checkpoint_is_refused_without_bad_advice(
    tmp_path, monkeypatch, zipped
):
    import pickle

    import torch

    from speechbrain_relevance.errors import CheckpointFileError
    from speechbrain_relevance.training.checkpoints import load_checkpoint_file

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    proof = tmp_path / "ran"
    path = tmp_path / "model.ckpt"
    payload = {"weight": torch.zeros(2), "x": _Mkdir(str(proof))}
    if zipped:
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(_Mkdir(str(proof)), f, protocol=4)
    with pytest.raises(CheckpointFileError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert not proof.exists()
    assert str(path) in message
    assert "could run code" in message
    assert "weights_only" not in message and "False" not in message


def _write_many(path, n):
    from speechbrain_relevance.data.preparation import write_json

    for i in range(n):
        write_json(path, {"writer": os.getpid(), "i": i})


def test_processes_writing_one_json_file_do_not_collide(tmp_path):
    # Folds of one seed run side by side share their folder's audio check
    # cache; with one temporary name, one writer's rename took the other's
    # file away (FileNotFoundError in the other fold).
    import multiprocessing

    path = str(tmp_path / "audio_check.json")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(path, 300))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with open(path, encoding="utf-8") as f:
        assert json.load(f)["i"] == 299
    assert os.listdir(tmp_path) == ["audio_check.json"]


def test_a_failed_json_write_keeps_the_old_file_and_leaves_no_temporary(
        tmp_path):
    from speechbrain_relevance.data.preparation import write_json

    path = str(tmp_path / "results.json")
    write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        write_json(path, {"not json": object()})
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == {"ok": 1}
    assert os.listdir(tmp_path) == ["results.json"]
