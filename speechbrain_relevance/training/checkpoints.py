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

Under data-parallel training (``torchrun``) every process must take part
in the same collective operations in the same order. SpeechBrain's
``delete_checkpoints`` lets each process list the checkpoint folders and
decide on its own which to delete, and every deletion is a collective
(``main_process_only`` broadcasts its result); a process that listed the
folders while the main one was still writing (the meta file of an
:class:`AtomicCheckpointer` appears last) decided differently, and the
processes then waited for ever on collectives the others never joined.
:class:`AtomicCheckpointer` makes every process wait until a checkpoint
is complete, and lets the main process alone decide what to delete.

Every checkpoint it loads, resuming included, goes through
:func:`load_checkpoint_file` (tensors only, never code, whatever the
environment says) or the object's own loader, and a damaged file or meta
file ends the run with an error naming it (and an older intact
checkpoint, if there is one), never silently another checkpoint.

Authors
 * speechbrain-relevance developers
"""

import logging
import os
import pathlib
import random
import shutil

import numpy as np
import torch
from speechbrain.utils.checkpoints import (
    CKPT_PREFIX,
    DEFAULT_LOAD_HOOKS,
    METAFNAME,
    PARAMFILE_EXT,
    Checkpointer,
    ckpt_recency,
    get_default_hook,
    hook_on_loading_state_dict_checkpoint,
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
    torch_recovery,
)
from speechbrain.utils.distributed import ddp_barrier, if_main_process

from speechbrain_relevance.checkpoint_files import (
    checkpoint_of,
    load_checkpoint_file,
    read_checkpoint_meta,
)
from speechbrain_relevance.errors import CheckpointFileError

logger = logging.getLogger(__name__)

_PARTIAL = ".partial"


class AtomicCheckpointer(Checkpointer):
    """A ``Checkpointer`` whose checkpoints appear only once complete.

    Same arguments and behaviour as
    ``speechbrain.utils.checkpoints.Checkpointer``; use it in a yaml as
    ``checkpointer: !new:speechbrain_relevance.training.AtomicCheckpointer``.
    Besides writing the meta file last, it

    * makes every process wait, after a save, until the checkpoint is
      complete on disk, and lets the main process alone decide which
      checkpoints to delete (:meth:`delete_checkpoints`): every process
      then takes part in the same collective operations, whatever it saw
      on disk (data-parallel training);
    * loads every module, optimizer and scheduler file with
      :func:`load_checkpoint_file` (tensors only), and reports any file
      that cannot be loaded, meta files included, as a
      :class:`CheckpointFileError` naming it (and an older intact
      checkpoint, if one exists).

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

        Every process returns only once the checkpoint is complete on
        disk, so that none lists the checkpoints before it appears.

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
        # The other processes wait for the rename: one that went on would
        # list the checkpoints without this one.
        ddp_barrier()
        return ckpt

    def save_and_keep_only(
        self,
        meta=None,
        end_of_epoch=True,
        name=None,
        num_to_keep=1,
        keep_recent=True,
        importance_keys=None,
        max_keys=None,
        min_keys=None,
        ckpt_predicate=None,
        verbosity=logging.INFO,
    ):
        """Save a checkpoint, then delete the least important ones.

        As ``Checkpointer.save_and_keep_only`` (whose default list of
        importance keys grows by one at every call), with
        :meth:`delete_checkpoints`' deletion.

        Arguments
        ---------
        meta : mapping, optional
            Added to the checkpoint's meta file.
        end_of_epoch : bool
            Whether the checkpoint is at the end of an epoch.
        name : str, optional
            Custom checkpoint name.
        num_to_keep : int
            Checkpoints kept per importance order.
        keep_recent : bool
            Also keep the ``num_to_keep`` most recent ones.
        importance_keys : list of callable, optional
            Importance orders (higher is kept).
        max_keys : list of str, optional
            Meta keys whose highest values are kept.
        min_keys : list of str, optional
            Meta keys whose lowest values are kept.
        ckpt_predicate : callable, optional
            Only checkpoints it accepts may be deleted.
        verbosity : int
            Logging level.
        """
        self.save_checkpoint(
            meta=meta, end_of_epoch=end_of_epoch, name=name,
            verbosity=verbosity,
        )
        keys = list(importance_keys or [])
        if keep_recent:
            keys.append(ckpt_recency)
        self.delete_checkpoints(
            num_to_keep=num_to_keep,
            max_keys=max_keys,
            min_keys=min_keys,
            importance_keys=keys,
            ckpt_predicate=ckpt_predicate,
            verbosity=verbosity,
        )

    def delete_checkpoints(
        self,
        *,
        num_to_keep=1,
        min_keys=None,
        max_keys=None,
        importance_keys=(ckpt_recency,),
        ckpt_predicate=None,
        verbosity=logging.INFO,
    ):
        """Delete the least important checkpoints, on the main process.

        The checkpoints kept are those of
        ``Checkpointer.delete_checkpoints``. Only the main process lists
        and deletes them; every process waits for all the others before
        (none still reads a checkpoint) and after (none lists one being
        deleted). So every process runs the same two barriers, whatever
        it would have seen on disk.

        Arguments
        ---------
        num_to_keep : int
            Checkpoints kept per importance order (>= 0).
        min_keys : list of str, optional
            Meta keys whose lowest values are kept.
        max_keys : list of str, optional
            Meta keys whose highest values are kept.
        importance_keys : sequence of callable
            Importance orders (higher is kept).
        ckpt_predicate : callable, optional
            Only checkpoints it accepts may be deleted.
        verbosity : int
            Logging level.

        Returns
        -------
        list of pathlib.Path
            The folders deleted (empty on the other processes).
        """
        if num_to_keep < 0:
            raise ValueError("Number of checkpoints to keep must be >= 0.")
        ddp_barrier()
        deleted = []
        if if_main_process():
            deleted = self._delete_unimportant(
                num_to_keep, min_keys, max_keys, importance_keys,
                ckpt_predicate, verbosity,
            )
        ddp_barrier()
        return deleted

    def _delete_unimportant(
        self, num_to_keep, min_keys, max_keys, importance_keys,
        ckpt_predicate, verbosity,
    ):
        """Delete what ``delete_checkpoints`` would (this process only)."""
        orders = [{"min_key": key} for key in min_keys or []]
        orders += [{"max_key": key} for key in max_keys or []]
        orders += [{"importance_key": key} for key in importance_keys]
        candidates, protected = {}, set()
        for order in orders:
            order["ckpt_predicate"] = ckpt_predicate
            for ckpt in self.find_checkpoints(**order):
                candidates[ckpt.path] = ckpt
            protected.update(
                c.path
                for c in self.find_checkpoints(
                    max_num_checkpoints=num_to_keep, **order
                )
            )
        deleted = []
        for path in sorted(set(candidates) - protected):
            if not Checkpointer._is_checkpoint_dir(path):
                raise RuntimeError(
                    f"{path} does not look like a checkpoint: not deleted"
                )
            shutil.rmtree(path)
            logger.log(verbosity, "Deleted checkpoint in %s", path)
            deleted.append(path)
        return deleted

    @staticmethod
    def _construct_checkpoint_objects(checkpoint_dirs):
        """Read the checkpoints' meta files, naming one that is damaged."""
        return [checkpoint_of(ckpt_dir) for ckpt_dir in checkpoint_dirs]

    def list_checkpoints(self):
        """List the checkpoints; a damaged meta file is an error.

        Returns
        -------
        list of Checkpoint
            The checkpoints of the folder.

        Raises
        ------
        CheckpointFileError
            Naming a meta file that cannot be read (and the folders whose
            meta files can, which the run may go on from once the damaged
            folder is removed).
        """
        dirs = self._list_checkpoint_dirs()
        try:
            return self._construct_checkpoint_objects(dirs)
        except CheckpointFileError as e:
            readable = []
            for path in dirs:
                try:
                    read_checkpoint_meta(path / METAFNAME)
                except CheckpointFileError:
                    continue
                readable.append(path.name)
            if not readable:
                raise
            raise CheckpointFileError(
                f"{e}; the other checkpoint(s) {', '.join(sorted(readable))} "
                f"in {self.checkpoints_dir} read fine: move the damaged "
                "folder away to go on from them"
            ) from None

    def load_checkpoint(self, checkpoint):
        """Load a checkpoint; a file that cannot be loaded is an error.

        Arguments
        ---------
        checkpoint : Checkpoint
            The checkpoint to load.

        Raises
        ------
        CheckpointFileError
            Naming the file that could not be loaded and, if there is one,
            the most recent older checkpoint whose files all load (it is
            offered, never loaded in its place).
        """
        try:
            self._call_load_hooks(checkpoint)
        except CheckpointFileError as e:
            older = self._intact_older(checkpoint)
            if older is None:
                raise
            epoch = older.meta.get("epoch")
            what = f" (epoch {epoch})" if epoch is not None else ""
            raise CheckpointFileError(
                f"{e}; the older checkpoint {older.path}{what} is intact: "
                f"move {checkpoint.path} away to go on from it"
            ) from None

    def _call_load_hooks(self, checkpoint):
        """Load every recoverable, with the safe loader for torch state.

        The files of torch state (modules, optimizers, schedulers loaded
        by SpeechBrain's ``torch_recovery``) are all read first, so that a
        damaged one stops the load before anything changed.
        """
        logger.info("Loading a checkpoint from %s", checkpoint.path)
        end_of_epoch = checkpoint.meta.get("end-of-epoch", True)
        paths, states = {}, {}
        for name, obj in self.recoverables.items():
            path = checkpoint.paramfiles.get(name)
            if path is None:
                if self._may_be_missing(name):
                    continue
                raise CheckpointFileError(
                    f"{checkpoint.path} lacks {name}{PARAMFILE_EXT} (the "
                    "run checkpoints it): the checkpoint is incomplete"
                )
            paths[name] = path
            if self._reads_torch_state(name, obj):
                states[name] = _state_dict_file(path)
        for name, path in paths.items():
            obj = self.recoverables[name]
            try:
                if name in states:
                    _apply_state(obj, states[name])
                else:
                    self._load_recoverable(name, obj, path, end_of_epoch)
            except CheckpointFileError:
                raise
            except Exception as e:  # noqa: BLE001 (name the file)
                detail = " ".join(str(e).split())[:300] or type(e).__name__
                raise CheckpointFileError(
                    f"{path}: cannot be loaded into {name} "
                    f"({type(obj).__name__}): {detail}"
                ) from None

    def _reads_torch_state(self, name, obj):
        """Whether SpeechBrain would load ``obj`` with ``torch.load``."""
        return name not in self.custom_load_hooks and (
            get_default_hook(obj, DEFAULT_LOAD_HOOKS) is torch_recovery
        )

    def _may_be_missing(self, name):
        """Whether a recoverable without a file in a checkpoint is skipped."""
        if self.allow_partial_load:
            return True
        if self._optional(name):
            logger.warning("The checkpoint has no file for %s: skipped", name)
            return True
        return False

    def _load_recoverable(self, name, obj, path, end_of_epoch):
        """Load one recoverable from ``path``."""
        if self._reads_torch_state(name, obj):
            # SpeechBrain's hook unpickles whatever the file holds unless
            # torch's default says otherwise (which an environment
            # variable can switch off).
            _apply_state(obj, _state_dict_file(path))
            return
        if name in self.custom_load_hooks:
            self.custom_load_hooks[name](obj, path, end_of_epoch)
            return
        hook = get_default_hook(obj, DEFAULT_LOAD_HOOKS)
        if hook is None:
            raise RuntimeError(
                f"no loader for {type(obj).__name__}: register a hook"
            )
        hook(obj, path, end_of_epoch)

    def _intact_older(self, checkpoint):
        """Return the latest checkpoint older than ``checkpoint`` that loads.

        Every parameter file must read as tensors (torch state) or be a
        text file; nothing is loaded into the recoverables.
        """
        try:
            others = self.list_checkpoints()
        except CheckpointFileError:
            return None
        stamp = checkpoint.meta.get("unixtime", float("inf"))
        older = sorted(
            (
                c for c in others
                if c.path != checkpoint.path
                and c.meta.get("unixtime", 0) < stamp
            ),
            key=ckpt_recency,
            reverse=True,
        )
        for ckpt in older:
            if set(self.recoverables) - set(ckpt.paramfiles) - {
                n for n in self.recoverables if self._optional(n)
            }:
                continue
            if all(_file_reads(p) for p in ckpt.paramfiles.values()):
                return ckpt
        return None

    def _optional(self, name):
        """Whether a recoverable may lack a file (no warning)."""
        return (
            self.allow_partial_load
            or "dataloader" in name
            or bool(self.optional_recoverables.get(name))
        )

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


def _state_dict_file(path):
    """Read a state dict with :func:`load_checkpoint_file`, or name the file."""
    state = load_checkpoint_file(path)
    if not isinstance(state, dict):
        raise CheckpointFileError(
            f"{path}: holds a {type(state).__name__}, not a state dict"
        )
    return state


def _apply_state(obj, state):
    """Load a state dict into a module (strictly) or another object."""
    if isinstance(obj, torch.nn.Module):
        obj.load_state_dict(
            hook_on_loading_state_dict_checkpoint(state), strict=True
        )
    else:
        obj.load_state_dict(state)


def _file_reads(path):
    """Whether a checkpoint file reads: tensors, or a small text file."""
    try:
        load_checkpoint_file(path)
        return True
    except CheckpointFileError:
        pass
    try:
        with open(path, encoding="utf-8") as f:
            f.read(1 << 20)
        return True
    except (OSError, UnicodeDecodeError):
        return False


@register_checkpoint_hooks
class RandomState:
    """Checkpoints the random generators so that a resumed run is exact.

    Augmentation (SpecAugment, cropping, mixup), dropout and shuffling
    draw from the global generators of torch (CPU and CUDA), NumPy and
    Python. Without their state in the checkpoint a resumed run continues
    from the seed's initial state and diverges from the uninterrupted run.

    At an end-of-epoch checkpoint the state is restored when the checkpoint
    is loaded. At an intra-epoch checkpoint it is restored just before the
    next training batch (:meth:`apply_pending`): in between, the resumed
    run creates its data loader iterator, which draws from torch's
    generator where the uninterrupted run did not.

    Under DDP the main process saves its own state, which every process
    then restores: augmentation stays random across processes per batch,
    but a resumed multi-process run is not bit-identical to an
    uninterrupted one.

    Example
    -------
    >>> import tempfile
    >>> state = RandomState()
    >>> path = tempfile.mkstemp()[1]
    >>> _ = torch.manual_seed(0); state.save(path)
    >>> a = torch.rand(3)
    >>> state.load(path, end_of_epoch=True)
    >>> bool((torch.rand(3) == a).all())
    True
    """

    def __init__(self):
        self._pending = None

    @staticmethod
    def capture():
        """Return the state of every global generator, as tensors."""
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        version, internal, gauss_next = random.getstate()
        state = {
            "torch": torch.get_rng_state(),
            "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
            "numpy_rest": torch.tensor([pos, has_gauss], dtype=torch.int64),
            "numpy_gauss": torch.tensor(gauss, dtype=torch.float64),
            "python": torch.tensor(internal, dtype=torch.int64),
            "python_meta": torch.tensor(
                [version, gauss_next is not None], dtype=torch.int64
            ),
            "python_gauss": torch.tensor(
                0.0 if gauss_next is None else gauss_next,
                dtype=torch.float64,
            ),
        }
        if kind != "MT19937":  # pragma: no cover (NumPy's only legacy kind)
            raise RuntimeError(f"unexpected NumPy generator {kind!r}")
        if torch.cuda.is_available():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                state[f"cuda{i}"] = s
        return state

    @staticmethod
    def restore(state):
        """Set every global generator from :meth:`capture`'s result."""
        torch.set_rng_state(state["torch"])
        pos, has_gauss = (int(v) for v in state["numpy_rest"])
        np.random.set_state((
            "MT19937",
            state["numpy_keys"].numpy().astype(np.uint32),
            pos,
            has_gauss,
            float(state["numpy_gauss"]),
        ))
        version, has_next = (int(v) for v in state["python_meta"])
        random.setstate((
            version,
            tuple(int(v) for v in state["python"]),
            float(state["python_gauss"]) if has_next else None,
        ))
        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            cuda = [state[f"cuda{i}"] for i in range(n) if f"cuda{i}" in state]
            if len(cuda) == n:
                torch.cuda.set_rng_state_all(cuda)

    @mark_as_saver
    def save(self, path):
        """Write the generators' state to ``path``."""
        torch.save(self.capture(), path)

    @mark_as_loader
    def load(self, path, end_of_epoch=True):
        """Restore now (end of epoch) or before the next training batch."""
        state = load_checkpoint_file(path)
        if end_of_epoch:
            self._pending = None
            self.restore(state)
        else:
            self._pending = state

    def apply_pending(self):
        """Restore the state of an intra-epoch checkpoint, once.

        Returns
        -------
        bool
            Whether a state was restored.
        """
        if self._pending is None:
            return False
        self.restore(self._pending)
        self._pending = None
        return True
