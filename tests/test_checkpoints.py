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
