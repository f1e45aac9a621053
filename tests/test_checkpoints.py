"""Checkpoints interrupted while being written are never recovered."""

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_relevance.training import AtomicCheckpointer


class Interrupted(Exception):
    pass


def interrupted_save(cls, folder):
    """Save once, then a second save that dies after its first file."""
    first, second = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ckpter = cls(folder, {"a": first, "b": second})
    good = ckpter.save_checkpoint(name="good")
    with torch.no_grad():
        first.weight.fill_(7.0)

    def die(obj, path):
        raise Interrupted  # as if killed while writing b.ckpt

    ckpter.add_recoverable("b", second, custom_save_hook=die)
    with pytest.raises(Interrupted):
        ckpter.save_checkpoint(name="broken")
    return ckpter, good, first


def test_speechbrain_checkpointer_lists_a_half_written_checkpoint(tmp_path):
    # The defect being worked around: the meta file is written first.
    ckpter, _, _ = interrupted_save(Checkpointer, tmp_path)
    names = sorted(c.path.name for c in ckpter.list_checkpoints())
    assert names == ["CKPT+broken", "CKPT+good"]


def test_atomic_checkpointer_ignores_and_removes_interrupted_saves(tmp_path):
    ckpter, good, first = interrupted_save(AtomicCheckpointer, tmp_path)
    assert [c.path for c in ckpter.list_checkpoints()] == [good.path]
    assert (tmp_path / "CKPT+broken").is_dir()
    loaded = ckpter.recover_if_possible()
    assert loaded.path == good.path
    assert not torch.all(first.weight == 7.0)
    # The next save cleans up the interrupted folder.
    ckpter.custom_save_hooks.pop("b")
    ckpter.save_checkpoint(name="next")
    assert not (tmp_path / "CKPT+broken").exists()
    names = sorted(c.path.name for c in ckpter.list_checkpoints())
    assert names == ["CKPT+good", "CKPT+next"]


# Issue 29: resuming trusts nothing in save/.


class _Mkdir:
    """Unpickling this calls os.mkdir: proof that a file's code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os

        return (os.mkdir, (self.path,))


def _two_epochs(folder):
    """An AtomicCheckpointer with a module, an optimizer and a counter,
    and two end-of-epoch checkpoints (epoch 1, then 2)."""
    from speechbrain.utils.epoch_loop import EpochCounter

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    counter = EpochCounter(5)
    ckpter = AtomicCheckpointer(
        folder, {"model": model, "optimizer": opt, "counter": counter}
    )
    first = ckpter.save_checkpoint(meta={"epoch": 1}, name="e1")
    with torch.no_grad():
        model.weight.fill_(2.0)
    second = ckpter.save_checkpoint(meta={"epoch": 2}, name="e2")
    with torch.no_grad():
        model.weight.fill_(0.0)
    return ckpter, model, first, second


@pytest.mark.parametrize("name", ["model", "optimizer", "counter"])
def test_random_bytes_in_a_checkpoint_file_name_it(tmp_path, name):
    import numpy as np

    from speechbrain_relevance.errors import CheckpointFileError

    ckpter, model, first, second = _two_epochs(tmp_path)
    damaged = second.path / f"{name}.ckpt"
    damaged.write_bytes(np.random.default_rng(17).bytes(4096))
    with pytest.raises(CheckpointFileError) as info:
        ckpter.recover_if_possible()
    message = str(info.value)
    assert str(damaged) in message
    assert "weights_only" not in message and "\n" not in message
    # The older, intact checkpoint is offered, never loaded instead.
    assert f"the older checkpoint {first.path} (epoch 1) is intact" in message
    if name != "counter":
        # Torch state is all read before any of it is loaded.
        assert torch.all(model.weight == 0.0)


def test_damaged_meta_file_is_named(tmp_path):
    import numpy as np

    from speechbrain_relevance.errors import CheckpointFileError

    ckpter, _, first, second = _two_epochs(tmp_path)
    meta = second.path / "CKPT.yaml"
    meta.write_bytes(np.random.default_rng(3).bytes(512))
    with pytest.raises(CheckpointFileError) as info:
        ckpter.recover_if_possible()
    message = str(info.value)
    assert message.startswith(f"{meta}: unreadable checkpoint meta file")
    assert first.path.name in message
    assert "UnicodeDecodeError" not in type(info.value).__name__


@pytest.mark.parametrize("zipped", [True, False])
def test_code_in_a_module_checkpoint_never_runs_on_resume(
    tmp_path, monkeypatch, zipped
):
    import pickle

    from speechbrain_relevance.errors import CheckpointFileError

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    ckpter, model, _, second = _two_epochs(tmp_path / "save")
    proof = tmp_path / "ran"
    path = second.path / "model.ckpt"
    if zipped:
        torch.save({"weight": torch.zeros(2, 2), "x": _Mkdir(str(proof))},
                   path)
    else:
        with open(path, "wb") as f:
            pickle.dump(_Mkdir(str(proof)), f, protocol=4)
    with pytest.raises(CheckpointFileError) as info:
        ckpter.recover_if_possible()
    assert not proof.exists()
    message = str(info.value)
    assert str(path) in message and "could run code" in message
    assert "weights_only" not in message


def test_module_of_another_shape_is_named(tmp_path):
    from speechbrain_relevance.errors import CheckpointFileError

    ckpter, _, _, second = _two_epochs(tmp_path)
    torch.save(torch.nn.Linear(3, 2).state_dict(), second.path / "model.ckpt")
    with pytest.raises(CheckpointFileError, match="cannot be loaded into "
                       "model \\(Linear\\): Error"):
        ckpter.recover_if_possible()


def test_pruning_is_decided_by_the_main_process_alone(tmp_path):
    """Every process runs the same two barriers, whatever it sees."""
    from speechbrain_relevance.training import checkpoints

    ckpter, _, first, second = _two_epochs(tmp_path)
    calls = []
    original = checkpoints.ddp_barrier
    checkpoints.ddp_barrier = lambda: calls.append("barrier")
    try:
        deleted = ckpter.delete_checkpoints(num_to_keep=1)
    finally:
        checkpoints.ddp_barrier = original
    assert deleted == [first.path]
    assert calls == ["barrier", "barrier"]
    assert [c.path for c in ckpter.list_checkpoints()] == [second.path]


@pytest.fixture(scope="module")
def dcase_run(tmp_path_factory):
    """A finished one-epoch DCASE2020 run (tiny synthetic data)."""
    import os
    import sys

    root = tmp_path_factory.mktemp("resume")
    recipe = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "recipes", "DCASE2020",
    )
    sys.path.insert(0, recipe)
    try:
        import synthetic_dcase2020
    finally:
        sys.path.remove(recipe)
    data = synthetic_dcase2020.generate_synthetic_dcase(
        str(root / "data"), n_cities=2, n_locations_per_city=2,
        n_segments_per_location=1, duration=0.3,
        scenes=("bus", "park", "tram"), devices=("a", "b"), seed=3,
    )
    args = [
        "hparams/mel_baseline.yaml", f"--data_folder={data}",
        f"--output_folder={root / 'run'}", "--device=cpu", "--num_workers=0",
        "--batch_size=2", "--noprogressbar",
    ]
    status, err = _dcase_main(recipe, [*args, "--number_of_epochs=1"])
    assert status == 0, err
    return recipe, root / "run", args


def _dcase_main(recipe, argv):
    """Run the DCASE recipe's command line in-process: (status, stderr)."""
    import contextlib
    import importlib.util
    import io
    import os
    import sys

    from speechbrain_relevance.cli import run_main

    sys.path.insert(0, recipe)
    cwd = os.getcwd()
    os.chdir(recipe)
    err = io.StringIO()
    try:
        spec = importlib.util.spec_from_file_location(
            "dcase_train_resume", os.path.join(recipe, "train.py")
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with contextlib.redirect_stderr(err):
            try:
                run_main(module.main, argv, prog="train.py")
                status = 0
            except SystemExit as e:
                status = e.code
    finally:
        os.chdir(cwd)
        sys.path.remove(recipe)
    return status, err.getvalue()


def test_resume_from_a_damaged_run_is_one_line(dcase_run, tmp_path):
    import shutil

    import numpy as np

    recipe, run, args = dcase_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (ckpt,) = copy.glob("save/CKPT+*")
    damaged = ckpt / "classifier.ckpt"
    damaged.write_bytes(np.random.default_rng(17).bytes(110389))
    argv = [a for a in args if not a.startswith("--output_folder")]
    status, err = _dcase_main(
        recipe, [*argv, f"--output_folder={copy}", "--number_of_epochs=2"]
    )
    assert status == 1, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("train.py: error: ")
    assert str(damaged) in lines[0]
    assert "weights_only" not in err and "Traceback" not in err
    # Nothing else was loaded or trained in its place.
    assert list(copy.glob("save/CKPT+*")) == [ckpt]
