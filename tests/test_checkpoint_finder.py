"""The one answer to "which checkpoint is the model?" (checkpoint_files).

A hand-made run folder with ranked, unranked, tied, interrupted and
damaged checkpoints; and the import rule that lets inference and the
analyses load a model without the training code.
"""

import subprocess
import sys

import pytest
import torch
import yaml

from speechbrain_relevance.checkpoint_files import (
    find_model_checkpoint,
    list_checkpoints,
)
from speechbrain_relevance.errors import CheckpointFileError
from speechbrain_relevance.training.brain import find_module_checkpoint


def _checkpoint(save, name, meta, modules=("classifier",)):
    folder = save / f"CKPT+{name}"
    folder.mkdir(parents=True)
    for module in modules:
        torch.save({"w": torch.zeros(1)}, folder / f"{module}.ckpt")
    if meta is not None:
        (folder / "CKPT.yaml").write_text(yaml.safe_dump(meta))
    return folder


@pytest.fixture
def run(tmp_path):
    save = tmp_path / "run" / "save"
    _checkpoint(save, "a", {"unixtime": 1, "acc": 0.5, "error": 0.2})
    _checkpoint(save, "b", {"unixtime": 2, "acc": 0.7, "error": 0.3})
    _checkpoint(save, "c", {"unixtime": 3, "acc": 0.7, "error": 0.4})
    _checkpoint(save, "d", {"unixtime": 4})  # intra-epoch: no acc
    _checkpoint(save, "e", None)  # interrupted save: not a checkpoint
    return tmp_path / "run"


def _name(ckpt):
    return ckpt.path.name


def test_best_by_key_ties_go_to_the_newest(run):
    assert [_name(c) for c in list_checkpoints(run / "save")] == [
        "CKPT+a", "CKPT+b", "CKPT+c", "CKPT+d"]
    # The run folder and its save folder give the same answer.
    assert _name(find_model_checkpoint(run)) == "CKPT+c"
    assert _name(find_model_checkpoint(run / "save")) == "CKPT+c"
    assert _name(find_model_checkpoint(run, min_key="error")) == "CKPT+a"
    assert _name(find_model_checkpoint(run, latest=True)) == "CKPT+d"


def test_a_folder_of_module_files_is_the_model(run):
    folder = run / "save" / "CKPT+a"
    ckpt = find_model_checkpoint(folder, modules=["classifier"])
    assert ckpt.path == folder and ckpt.meta["acc"] == 0.5
    assert set(ckpt.paramfiles) == {"classifier"}
    # Only the modules asked for make a folder a model.
    with pytest.raises(FileNotFoundError, match="No model checkpoint"):
        find_model_checkpoint(folder, modules=["compute_features"])


def test_no_ranked_checkpoint_is_an_error_naming_the_way_out(tmp_path):
    save = tmp_path / "save"
    _checkpoint(save, "x", {"unixtime": 1})
    with pytest.raises(FileNotFoundError, match=r"records 'acc'.*latest"):
        find_model_checkpoint(save)
    assert _name(find_model_checkpoint(save, latest=True)) == "CKPT+x"
    with pytest.raises(FileNotFoundError, match="is the run finished"):
        find_model_checkpoint(tmp_path / "empty")


def test_a_damaged_meta_file_is_named(run):
    bad = run / "save" / "CKPT+b" / "CKPT.yaml"
    bad.write_bytes(bytes([0xFF, 0xFE, 0x00]))
    with pytest.raises(CheckpointFileError, match="CKPT\\+b/CKPT.yaml"):
        find_model_checkpoint(run)


def test_training_finds_a_module_file_with_the_same_policy(run):
    found = find_module_checkpoint(str(run), key="classifier")
    assert found.endswith("CKPT+c/classifier.ckpt")
    with pytest.raises(FileNotFoundError, match="'compute_features'"):
        find_module_checkpoint(str(run), key="compute_features")


def test_inference_and_analysis_do_not_import_training():
    code = (
        "import sys\n"
        "import speechbrain_relevance.inference\n"
        "import speechbrain_relevance.analysis\n"
        "import speechbrain_relevance.analysis.movement\n"
        "print(sorted(m for m in sys.modules if m.startswith("
        "('speechbrain_relevance.training', 'speechbrain_relevance.cli'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        check=True,
    ).stdout.strip()
    assert out == "[]"
