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

import numpy as np
import pytest
import soundfile as sf

from speechbrain_relevance.data import synthetic_dcase, synthetic_urbansound
from speechbrain_relevance.data.audio import AudioFileError, audio_info
from speechbrain_relevance.data.manifests import ManifestError

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
    hparams = {"sample_rate": 44100, "labels": ["bus", "park", "tram"]}
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
    hparams = {"sample_rate": 44100, "labels": ["bus", "park", "tram"]}
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

    from speechbrain_relevance.inference import load_module_weights
    from speechbrain_relevance.training.checkpoints import CheckpointFileError

    path = tmp_path / "classifier.ckpt"
    torch.save({"weight": torch.zeros(1), "hook": print}, path)
    with pytest.raises(CheckpointFileError) as info:
        load_module_weights(torch.nn.Linear(1, 1), path)
    assert str(path) in str(info.value)
    assert "more than tensors" in str(info.value)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointFileError, match="unreadable checkpoint"):
        load_module_weights(torch.nn.Linear(1, 1), path)
