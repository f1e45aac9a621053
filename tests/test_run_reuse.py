"""Reusing a run's output checks what it holds (issue 29, parts 4 and 5).

``--pretrained_filterbank`` names what differs (sample rate, bands, kind
of front-end); the exporter refuses a run that did not finish; inference
names a training run folder, a savedir that is a file, an empty input,
and refreshes a savedir that held another model's label encoder.
"""

import os

import pytest
import torch

from speechbrain_relevance.errors import ConfigError
from speechbrain_relevance.lobes import CosGaussFilterbank, MelFilterbank
from speechbrain_relevance.training import AtomicCheckpointer
from speechbrain_relevance.training.brain import load_frozen


def _cosgauss(n_filters=8, sample_rate=8000):
    return CosGaussFilterbank(
        n_filters=n_filters, sample_rate=sample_rate, win_length=200,
        hop_length=80, kernel_size=129,
    )


def _run_folder(folder, module, sample_rate=8000,
                cls="speechbrain_relevance.lobes.CosGaussFilterbank"):
    """A run's folder as the recipes leave it: yaml and save/CKPT+."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "hyperparams.yaml"), "w") as f:
        f.write(
            f"sample_rate: {sample_rate}\n"
            f"compute_features: !new:{cls}\n"
            "    sample_rate: !ref <sample_rate>\n"
        )
    ckpter = AtomicCheckpointer(
        os.path.join(folder, "save"), {"compute_features": module}
    )
    ckpter.save_checkpoint(meta={"acc": 0.5, "epoch": 1})
    return str(folder)


def test_filterbank_of_another_sample_rate_is_refused(tmp_path):
    run = _run_folder(tmp_path / "fsdd", _cosgauss(sample_rate=8000))
    with pytest.raises(ConfigError) as info:
        load_frozen(_cosgauss(sample_rate=44100), run, sample_rate=44100)
    message = str(info.value)
    assert message.startswith("pretrained_filterbank: ")
    assert "its run is at 8000 Hz" in message
    assert "this run at 44100 Hz" in message


def test_filterbank_with_other_bands_is_refused(tmp_path):
    run = _run_folder(tmp_path / "run", _cosgauss(n_filters=8))
    with pytest.raises(ConfigError) as info:
        load_frozen(_cosgauss(n_filters=16), run, sample_rate=8000)
    message = str(info.value)
    assert "compute_features.theta has shape [8] there, [16] here" in message
    assert "number of bands" in message


def test_filterbank_of_another_kind_is_refused(tmp_path):
    run = _run_folder(tmp_path / "run", _cosgauss())
    with pytest.raises(ConfigError) as info:
        load_frozen(MelFilterbank(n_mels=8), run, sample_rate=8000)
    assert (
        "its run built compute_features as CosGaussFilterbank, this run as "
        "MelFilterbank" in str(info.value)
    )


def test_matching_filterbank_loads_and_freezes(tmp_path):
    torch.manual_seed(0)
    learnt = _cosgauss()
    with torch.no_grad():
        learnt.theta.mul_(1.1)
    run = _run_folder(tmp_path / "run", learnt)
    fresh = _cosgauss()
    load_frozen(fresh, run, sample_rate=8000)
    assert torch.equal(fresh.theta, learnt.theta)
    assert not fresh.theta.requires_grad


def test_unfinished_runs_are_named():
    from types import SimpleNamespace

    from speechbrain_relevance.export import unfinished_reason

    averaged = SimpleNamespace(meta={"epoch": 12, "averaged_epochs": [9, 12]})
    one_epoch = SimpleNamespace(meta={"epoch": 5, "acc": 0.5})
    run = {"average_checkpoints": 4, "number_of_epochs": 12}
    assert unfinished_reason(run, "/nonexistent", averaged) is None
    reason = unfinished_reason(run, "/nonexistent", one_epoch)
    assert "averages its last 4 epochs" in reason
    assert "one epoch (5)" in reason


def test_run_killed_before_its_last_epoch_is_named(tmp_path):
    from speechbrain_relevance.export import unfinished_reason

    ckpter = AtomicCheckpointer(str(tmp_path), {"m": torch.nn.Linear(1, 1)})
    ckpt = ckpter.save_checkpoint(meta={"epoch": 3, "acc": 0.5})
    run = {"number_of_epochs": 10}
    assert unfinished_reason(run, str(tmp_path), ckpt) == (
        "its last checkpoint is of epoch 3 of its number_of_epochs=10"
    )
    assert unfinished_reason({"number_of_epochs": 3}, str(tmp_path),
                             ckpt) is None


def test_savedir_that_is_a_file_is_named(tmp_path):
    from speechbrain_relevance.inference import RelevanceClassifier

    model = tmp_path / "model"
    model.mkdir()
    (model / "hyperparams.yaml").write_text("pretrainer: null\n")
    savedir = tmp_path / "savedir"
    savedir.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        RelevanceClassifier.from_hparams(str(model), savedir=str(savedir))


def test_training_run_folder_names_the_exporter(tmp_path):
    from speechbrain_relevance.inference import RelevanceClassifier

    run = tmp_path / "run"
    (run / "save").mkdir(parents=True)
    (run / "hyperparams.yaml").write_text(
        "sample_rate: 8000\ncheckpointer: null\n"
    )
    with pytest.raises(ValueError) as info:
        RelevanceClassifier.from_hparams(str(run))
    message = str(info.value)
    assert "is a training run's folder, not an exported model folder" in (
        message
    )
    assert "python -m speechbrain_relevance.export" in message


def test_savedir_counterparts_pair_the_label_encoder(tmp_path):
    from speechbrain_relevance.inference import refresh_savedir

    a, b, save = tmp_path / "a", tmp_path / "b", tmp_path / "save"
    for folder, labels in ((a, "'x' => 0\n"), (b, "'y' => 0\n")):
        folder.mkdir()
        (folder / "label_encoder.txt").write_text(labels)
        (folder / "classifier.ckpt").write_text("same")
    save.mkdir()
    # As the pretrainer fetched a: every file named after its loadable.
    os.symlink(a / "label_encoder.txt", save / "label_encoder.ckpt")
    os.symlink(a / "classifier.ckpt", save / "classifier.ckpt")
    assert refresh_savedir(str(a), str(save)) == []
    assert refresh_savedir(str(b), str(save)) == ["label_encoder.ckpt"]
    assert not os.path.lexists(save / "label_encoder.ckpt")
