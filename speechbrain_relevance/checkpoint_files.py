"""Which checkpoint is the model, and reading it safely.

One policy answers "which checkpoint is the model?" for the exporter,
the analyses, inference, training (``--pretrained_filterbank``) and the
studies (:func:`find_model_checkpoint`):

1. A folder holding ``<module>.ckpt`` files (a ``CKPT+...`` folder, an
   exported model folder) is the model.
2. In a run's checkpoint folder (``<run>/save``, or the run folder that
   holds it) the model is the checkpoint with the highest ``max_key``
   (default ``acc``, the recipes' validation accuracy), or the lowest
   ``min_key``, among those that record the key: the one the recipe
   tested. A recipe that averages its last epochs keeps the averaged
   checkpoint alone, so it is that one.
3. ``latest=True`` takes the most recent checkpoint instead (a run
   stopped before it validated).
4. Anything else is an error that names the folder and the way out,
   never silently another checkpoint.

Every file is read with :func:`load_checkpoint_file` (tensors only,
never code) and every meta file with :func:`read_checkpoint_meta`, which
name a damaged file. The module imports nothing of the training code, so
inference and the analyses load models without it.

Authors
 * speechbrain-relevance developers
"""

import os
import pathlib
import pickle
import zipfile

import torch
import yaml
from speechbrain.utils.checkpoints import (
    METAFNAME,
    PARAMFILE_EXT,
    Checkpoint,
    Checkpointer,
    ckpt_recency,
)

from speechbrain_relevance.errors import CheckpointFileError

__all__ = [
    "checkpoint_of",
    "find_model_checkpoint",
    "list_checkpoints",
    "load_checkpoint_file",
    "read_checkpoint_meta",
]


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
    speechbrain_relevance.errors.CheckpointFileError: \
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


def read_checkpoint_meta(path):
    """Read a checkpoint's meta file (``CKPT.yaml``), naming it if damaged.

    Arguments
    ---------
    path : str or pathlib.Path
        The meta file.

    Returns
    -------
    dict
        The meta data (``unixtime``, ``end-of-epoch`` and the recipe's
        keys).

    Raises
    ------
    CheckpointFileError
        If the file cannot be read or is not a checkpoint's meta data.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "CKPT.yaml")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0xff, 0xfe, 0x00, 0x81]))
    >>> read_checkpoint_meta(path)
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.CheckpointFileError: \
.../CKPT.yaml: unreadable checkpoint meta file (...)
    """
    try:
        with open(path, encoding="utf-8") as f:
            meta = yaml.load(f, Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        detail = " ".join(str(e).split())[:120] or type(e).__name__
        raise CheckpointFileError(
            f"{path}: unreadable checkpoint meta file ({detail})"
        ) from None
    if not isinstance(meta, dict) or not isinstance(
        meta.get("unixtime"), (int, float)
    ):
        raise CheckpointFileError(
            f"{path}: unreadable checkpoint meta file (not the meta data "
            "of a checkpoint: no unixtime)"
        )
    return meta


def checkpoint_of(folder, meta=None):
    """Describe one checkpoint folder: its path, meta data and files.

    Arguments
    ---------
    folder : str or pathlib.Path
        A ``CKPT+...`` folder (its ``CKPT.yaml`` is read) or a folder of
        ``<name>.ckpt`` files without one (``meta`` then, default ``{}``).
    meta : dict, optional
        The meta data, instead of reading ``CKPT.yaml``.

    Returns
    -------
    speechbrain.utils.checkpoints.Checkpoint
        ``path``, ``meta`` and ``paramfiles`` (name to file).
    """
    folder = pathlib.Path(folder)
    if meta is None:
        meta_file = folder / METAFNAME
        meta = read_checkpoint_meta(meta_file) if meta_file.exists() else {}
    paramfiles = {
        f.stem: f for f in folder.iterdir() if f.suffix == PARAMFILE_EXT
    }
    return Checkpoint(folder, meta, paramfiles)


def list_checkpoints(save_folder):
    """List the complete checkpoints of a run's checkpoint folder.

    A folder whose meta file is missing (a save that was interrupted) is
    not a checkpoint; a damaged meta file is an error naming it.

    Arguments
    ---------
    save_folder : str
        The run's checkpoint folder (``<run>/save``).

    Returns
    -------
    list of speechbrain.utils.checkpoints.Checkpoint
        Oldest first.

    Example
    -------
    >>> list_checkpoints("/nonexistent/save")
    []
    """
    if not os.path.isdir(save_folder):
        return []
    dirs = [
        d for d in pathlib.Path(save_folder).iterdir()
        if Checkpointer._is_checkpoint_dir(d)
    ]
    return sorted((checkpoint_of(d) for d in dirs), key=ckpt_recency)


def _holds_modules(folder, modules):
    return os.path.isdir(folder) and any(
        os.path.isfile(os.path.join(folder, f"{name}{PARAMFILE_EXT}"))
        for name in modules
    )


def find_model_checkpoint(
    path, max_key="acc", min_key=None, latest=False, modules=None
):
    """Return the checkpoint that is a run's (or a folder's) model.

    The module's policy: a folder of module files is the model; in a
    run's checkpoint folder, the best by ``max_key`` (or ``min_key``)
    among the checkpoints that record it, or the most recent with
    ``latest``; otherwise an error naming the folder.

    Arguments
    ---------
    path : str
        A folder of ``<module>.ckpt`` files (``CKPT+...``, an exported
        model), a run's ``save`` folder, or a run folder holding one.
    max_key : str, optional
        Meta key to maximise (default ``acc``).
    min_key : str, optional
        Meta key to minimise instead.
    latest : bool
        Take the most recent checkpoint, whatever its meta data.
    modules : sequence of str, optional
        Module names that make a folder a model (default: any
        ``.ckpt`` file).

    Returns
    -------
    speechbrain.utils.checkpoints.Checkpoint
        Its ``path``, ``meta`` (empty for a folder without ``CKPT.yaml``)
        and ``paramfiles``.

    Raises
    ------
    FileNotFoundError
        No model there, or no checkpoint that records the key.

    Example
    -------
    >>> find_model_checkpoint("/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: No model checkpoint in /nonexistent ...
    """
    path = str(path)
    if os.path.isdir(path) and (
        _holds_modules(path, modules) if modules
        else any(f.endswith(PARAMFILE_EXT) for f in os.listdir(path))
    ):
        return checkpoint_of(path)
    save = path
    if not list_checkpoints(save) and os.path.isdir(
        os.path.join(path, "save")
    ):
        save = os.path.join(path, "save")
    checkpoints = list_checkpoints(save)
    if not checkpoints:
        raise FileNotFoundError(
            f"No model checkpoint in {path} (expected <module>.ckpt files "
            "there, or a run's save/CKPT+... folders; is the run "
            "finished?)"
        )
    if latest:
        return checkpoints[-1]
    key = min_key or max_key
    # Newest first: of equally good checkpoints the newest, as
    # SpeechBrain's Checkpointer picks what the recipe tests.
    ranked = [c for c in reversed(checkpoints) if key in c.meta]
    if not ranked:
        raise FileNotFoundError(
            f"No checkpoint in {save} records {key!r} (the run stopped "
            "before it validated?): take the latest one explicitly "
            "(latest=True, or --latest where a command offers it)"
        )
    if min_key:
        return min(ranked, key=lambda c: c.meta[min_key])
    return max(ranked, key=lambda c: c.meta[max_key])
