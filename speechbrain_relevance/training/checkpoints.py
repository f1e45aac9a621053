"""Checkpoints that survive being killed while they are written.

SpeechBrain's ``Checkpointer`` (1.1.x) writes a checkpoint folder's meta
file ``CKPT.yaml``, which marks the folder as a checkpoint, *before* the
parameter files. A run killed during saving (``kill -9``, a pre-empted
job) therefore leaves a checkpoint that looks complete but lacks files or
holds truncated ones, and resuming fails while loading it.

:class:`AtomicCheckpointer` is a drop-in replacement that writes the meta
file last, under a temporary name renamed into place once every parameter
file is written (``os.replace`` is atomic), so an interrupted save is not
a checkpoint at all: recovery takes the previous one. Folders left by
interrupted saves are removed by the next save.

Authors
 * speechbrain-relevance developers
"""

import logging
import os
import pathlib
import shutil

import torch  # noqa: F401 (used by the doctest)
from speechbrain.utils.checkpoints import (
    CKPT_PREFIX,
    METAFNAME,
    Checkpointer,
)
from speechbrain.utils.distributed import if_main_process

logger = logging.getLogger(__name__)

_PARTIAL = ".partial"


class AtomicCheckpointer(Checkpointer):
    """A ``Checkpointer`` whose checkpoints appear only once complete.

    Same arguments and behaviour as
    ``speechbrain.utils.checkpoints.Checkpointer``; use it in a yaml as
    ``checkpointer: !new:speechbrain_relevance.training.AtomicCheckpointer``.

    Example
    -------
    >>> import tempfile
    >>> model = torch.nn.Linear(2, 2)
    >>> ckpter = AtomicCheckpointer(tempfile.mkdtemp(), {"model": model})
    >>> ckpt = ckpter.save_checkpoint()
    >>> sorted(p.name for p in ckpt.path.iterdir())
    ['CKPT.yaml', 'model.ckpt']
    >>> len(ckpter.list_checkpoints())
    1
    """

    def _save_checkpoint_metafile(
        self, fpath, meta_to_include=None, end_of_epoch=True
    ):
        # Under a temporary name: the folder is not a checkpoint until
        # save_checkpoint renames it, after every parameter file.
        return super()._save_checkpoint_metafile(
            pathlib.Path(str(fpath) + _PARTIAL),
            meta_to_include or {},
            end_of_epoch,
        )

    def save_checkpoint(self, meta=None, end_of_epoch=True, name=None, **kw):
        """Save a checkpoint; it becomes visible only once complete.

        Arguments
        ---------
        meta : mapping
            Added to the checkpoint's meta file.
        end_of_epoch : bool
            Whether the checkpoint is at the end of an epoch.
        name : str, optional
            Custom checkpoint name.
        **kw : dict
            Passed on (e.g. ``verbosity``).

        Returns
        -------
        Checkpoint or None
            The checkpoint (None on non-main processes).
        """
        if if_main_process():
            self.remove_interrupted()
        ckpt = super().save_checkpoint(
            meta=meta or {}, end_of_epoch=end_of_epoch, name=name, **kw
        )
        if ckpt is not None:
            final = ckpt.path / METAFNAME
            os.replace(str(final) + _PARTIAL, final)
        return ckpt

    def remove_interrupted(self):
        """Delete the folders of saves that were interrupted.

        Returns
        -------
        list of pathlib.Path
            The folders removed.
        """
        removed = []
        root = pathlib.Path(self.checkpoints_dir)
        if not root.is_dir():
            return removed
        for path in root.iterdir():
            if (
                path.is_dir()
                and path.name.startswith(CKPT_PREFIX)
                and not (path / METAFNAME).exists()
                and (path / (METAFNAME + _PARTIAL)).exists()
            ):
                logger.warning("Removing interrupted checkpoint %s", path)
                shutil.rmtree(path)
                removed.append(path)
        return removed
