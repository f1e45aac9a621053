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
import pickle
import random
import shutil
import zipfile

import numpy as np
import torch
from speechbrain.utils.checkpoints import (
    CKPT_PREFIX,
    METAFNAME,
    Checkpointer,
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)
from speechbrain.utils.distributed import if_main_process

from speechbrain_relevance.cli import UserError

logger = logging.getLogger(__name__)

_PARTIAL = ".partial"


class CheckpointFileError(UserError, RuntimeError):
    """A checkpoint file that is missing, unreadable or not just tensors."""


def load_checkpoint_file(path):
    """Read a ``torch.save``-d file of tensors, never unpickling code.

    ``weights_only=True`` is passed explicitly (the environment variable
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` could otherwise switch it off);
    a refused or broken file raises an error that names it.

    Arguments
    ---------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    object
        What was saved (a state dict, tensors, numbers, lists, dicts).

    Raises
    ------
    CheckpointFileError
        Naming ``path``.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "bad.ckpt")
    >>> torch.save({"fn": print}, path)
    >>> load_checkpoint_file(path)
    Traceback (most recent call last):
    ...
    speechbrain_relevance.training.checkpoints.CheckpointFileError: \
.../bad.ckpt: refused: it holds more than tensors...
    """
    if not os.path.isfile(path):
        raise CheckpointFileError(f"{path}: checkpoint file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (any failure: name the file)
        # Random bytes fail anywhere in torch's reader (IndexError,
        # KeyError, ...); torch's own text may advise weights_only=False,
        # which would run a malicious file's code, so it is never shown.
        failure = e
    names = _pickle_globals(path)
    if isinstance(failure, pickle.UnpicklingError) and names is not None:
        # A well-formed pickle that the weights-only reader refused: it
        # asks for more than tensors, whatever torch's wording.
        unsafe = [n for n in names if not _is_tensor_global(n)]
        what = f" (it names {', '.join(unsafe)})" if unsafe else ""
        raise CheckpointFileError(
            f"{path}: refused: it holds more than tensors, and loading it "
            f"could run code{what}; use only checkpoints written by "
            "torch.save of tensors"
        ) from None
    detail = str(failure).strip().split("\n")[0][:120]
    if not detail or "weights_only" in detail:
        detail = type(failure).__name__
    raise CheckpointFileError(
        f"{path}: unreadable checkpoint (not a torch.save file of tensors: "
        f"{detail})"
    ) from None


#: Globals of torch.save's tensors and containers (by module or name).
_TENSOR_MODULES = ("torch", "collections", "_codecs", "numpy")


def _is_tensor_global(name):
    """Whether a pickled global is one of torch.save's tensor helpers."""
    return name.split(".")[0] in _TENSOR_MODULES


def _pickle_globals(path):
    """List the globals a checkpoint's pickle names, without running it.

    Arguments
    ---------
    path : str or pathlib.Path
        A ``torch.save`` file (zip with a ``data.pkl``) or a plain pickle.

    Returns
    -------
    list of str or None
        ``module.name`` of every global, or None if no complete pickle
        could be read (a corrupt or random file).
    """
    import io
    import pickletools

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                member = next(
                    n for n in z.namelist() if n.endswith("data.pkl")
                )
                data = z.read(member)
        else:
            with open(path, "rb") as f:
                data = f.read()
    except (OSError, StopIteration, zipfile.BadZipFile, RuntimeError):
        return None
    stream = io.BytesIO(data)
    names, complete = [], False
    # The legacy format holds several pickles in a row, then raw storage
    # bytes: read pickles until one fails.
    while stream.tell() < len(data):
        # STACK_GLOBAL takes module and name from the two strings pushed
        # before it, directly or from the memo.
        strings, memo, last = [], {}, None
        try:
            for op, arg, _ in pickletools.genops(stream):
                pushed = None
                if op.name in ("GLOBAL", "INST"):
                    names.append(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str) and "UNICODE" in op.name:
                    pushed = arg
                elif op.name == "MEMOIZE" and last is not None:
                    memo[len(memo)] = last
                elif op.name in ("PUT", "BINPUT", "LONG_BINPUT") and last:
                    memo[arg] = last
                elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                    pushed = memo.get(arg)
                if pushed is not None:
                    strings.append(pushed)
                if op.name not in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):
                    last = pushed
        except Exception:  # noqa: BLE001 (not a pickle from here on)
            break
        complete = True
    return names if complete else None


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
