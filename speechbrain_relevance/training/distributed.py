"""Data-parallel (DDP) training on CPU with SpeechBrain's ``Brain``.

Under ``torchrun``, ``Brain.on_fit_start`` calls ``Brain._wrap_distributed``
(speechbrain 1.1.x), which converts every trainable module's BatchNorm
layers to ``torch.nn.SyncBatchNorm`` and wraps the module in
``DistributedDataParallel``. There is no run option to turn the
conversion off, and DDP refuses ``SyncBatchNorm`` on CPU modules
("SyncBatchNorm layers only work with GPU modules"), so any model with
BatchNorm (the FCN, the CNN-LSTM) fails with the ``gloo`` backend on CPU.

Fix: mix :class:`SyncBatchNormControl` into the Brain subclass::

    class ASCBrain(SyncBatchNormControl, sb.Brain):
        ...

It replaces ``_wrap_distributed`` for DDP runs with
:func:`wrap_modules_for_ddp`, which wraps the same modules in the same way
and converts to ``SyncBatchNorm`` only when asked to and possible. The
choice comes from the hyperparameter ``sync_batchnorm`` (overridable on
the command line, ``--sync_batchnorm=False``, when the YAML file declares
it) or the class attribute of the same name:

* ``None`` (default, "auto"): synchronise on accelerators, not on CPU;
* ``True``: always (an error on CPU, with a clear message);
* ``False``: never; each process normalises with its own batch
  statistics, and the running statistics used in evaluation are those of
  rank 0 (DDP broadcasts buffers from rank 0 before each forward).

Everything else of SpeechBrain's DDP support is used as is, including
its main-process helper ``speechbrain.utils.distributed.if_main_process``.

Every wait on the other processes has a limit. :func:`init_distributed`
joins the ``torchrun`` group with the recipes' ``ddp_timeout_s`` (seconds)
as the limit of every collective operation; :func:`mark_stage` records
what the process is doing, and :func:`distributed_failure` turns a
collective that timed out (or lost a process) into one line naming that
stage, which :func:`~speechbrain_relevance.cli.run_main` prints. Work
only the main process does for long (data preparation) is waited for
with :func:`run_on_main`, outside that limit.

Authors
 * speechbrain-relevance developers
"""

import logging

import torch
from torch.nn import SyncBatchNorm
from torch.nn.parallel import DistributedDataParallel

logger = logging.getLogger(__name__)


def resolve_sync_batchnorm(setting, device):
    """Decide whether BatchNorm layers are converted to SyncBatchNorm.

    Arguments
    ---------
    setting : bool or None
        True, False, or None for automatic (only off CPU).
    device : str or torch.device
        The training device.

    Returns
    -------
    bool
        Whether to convert.

    Example
    -------
    >>> resolve_sync_batchnorm(None, "cpu")
    False
    >>> resolve_sync_batchnorm(None, "cuda:0")
    True
    >>> resolve_sync_batchnorm(False, "cuda:0")
    False
    """
    on_cpu = torch.device(device).type == "cpu"
    if setting is None:
        return not on_cpu
    if setting and on_cpu:
        raise ValueError(
            "sync_batchnorm=True needs an accelerator: DDP rejects "
            "SyncBatchNorm on CPU modules. Use sync_batchnorm=False (or "
            "leave it unset) for CPU training with the gloo backend."
        )
    return bool(setting)


def wrap_modules_for_ddp(
    modules,
    device,
    backend="gloo",
    find_unused_parameters=False,
    sync_batchnorm=None,
):
    """Wrap trainable modules in DistributedDataParallel, like Brain does.

    Modules without trainable parameters are left alone (as in
    ``Brain._wrap_distributed``). Must be called after the process group
    is initialised.

    Arguments
    ---------
    modules : torch.nn.ModuleDict or dict
        Modules to wrap; entries are replaced in place.
    device : str or torch.device
        Training device; with the gloo backend (or on CPU) DDP gets no
        ``device_ids``, else ``[device]``.
    backend : str
        The distributed backend (``"gloo"``, ``"nccl"``, ...).
    find_unused_parameters : bool
        Passed to DistributedDataParallel.
    sync_batchnorm : bool or None
        See :func:`resolve_sync_batchnorm`.

    Returns
    -------
    torch.nn.ModuleDict or dict
        ``modules``, with wrapped entries.

    Example
    -------
    >>> frozen = torch.nn.BatchNorm1d(4).requires_grad_(False)
    >>> mods = wrap_modules_for_ddp({"stats": frozen}, "cpu")
    >>> type(mods["stats"]).__name__  # nothing to train: not wrapped
    'BatchNorm1d'
    """
    sync = resolve_sync_batchnorm(sync_batchnorm, device)
    device = torch.device(device)
    for name in list(modules.keys()):
        module = modules[name]
        if not any(p.requires_grad for p in module.parameters()):
            continue
        if sync:
            module = SyncBatchNorm.convert_sync_batchnorm(module)
        if backend == "gloo" or device.type == "cpu":
            device_ids = None
        else:
            device_ids = [device]
        modules[name] = DistributedDataParallel(
            module,
            device_ids=device_ids,
            find_unused_parameters=find_unused_parameters,
        )
    return modules


class SyncBatchNormControl:
    """Brain mixin: DDP without the forced SyncBatchNorm conversion.

    Put it before ``speechbrain.core.Brain`` in the bases. For DDP runs
    (``torchrun``) it wraps the modules with :func:`wrap_modules_for_ddp`
    using the ``sync_batchnorm`` setting of the hyperparameters (if they
    define it) or of this class attribute; other runs (single process,
    DataParallel) go to Brain's own ``_wrap_distributed``.

    Example
    -------
    >>> import speechbrain as sb
    >>> class MyBrain(SyncBatchNormControl, sb.Brain):
    ...     sync_batchnorm = None  # auto: off on CPU
    >>> brain = MyBrain(
    ...     modules={"model": torch.nn.BatchNorm1d(4)},
    ...     run_opts={"device": "cpu"},
    ... )
    >>> brain.sync_batchnorm_setting() is None
    True
    """

    #: Default when the hyperparameters have no ``sync_batchnorm``.
    sync_batchnorm = None

    def sync_batchnorm_setting(self):
        """Return the ``sync_batchnorm`` setting in effect.

        Returns
        -------
        bool or None
            From ``hparams.sync_batchnorm`` if present, else the class
            attribute.
        """
        hparams = getattr(self, "hparams", None)
        return getattr(hparams, "sync_batchnorm", self.sync_batchnorm)

    def _wrap_distributed(self):
        """Wrap modules for DDP, converting BatchNorm only if wanted."""
        if not getattr(self, "distributed_launch", False):
            return super()._wrap_distributed()
        wrap_modules_for_ddp(
            self.modules,
            self.device,
            backend=self.distributed_backend,
            find_unused_parameters=self.find_unused_parameters,
            sync_batchnorm=self.sync_batchnorm_setting(),
        )


# ----------------------------------------------------------------------
# Joining the process group with a time limit, and naming the stage a
# collective failed in.

#: Seconds a collective operation may wait for the other processes when
#: the yaml sets no ``ddp_timeout_s``.
DEFAULT_TIMEOUT_S = 1800.0

#: What the process is doing (see :func:`mark_stage`) and its limit.
_STATE = {"stage": "starting", "timeout_s": None}

#: The group the main-process-only work is waited for in (no tight limit).
_LONG_WAIT = {"group": None}

#: How long the other processes wait for the main one's data preparation.
PREPARATION_TIMEOUT_S = 7 * 24 * 3600.0


def mark_stage(name):
    """Record the stage this process has reached (for error messages).

    A collective operation that fails (times out, or loses a process)
    is reported with the last stage marked, e.g. ``"epoch 2: saving the
    checkpoint"``.

    Arguments
    ---------
    name : str
        The stage.

    Returns
    -------
    str
        The previous stage.

    Example
    -------
    >>> previous = mark_stage("epoch 1: training")
    >>> current_stage()
    'epoch 1: training'
    >>> _ = mark_stage(previous)
    """
    previous = _STATE["stage"]
    _STATE["stage"] = str(name)
    logger.debug("Stage: %s", name)
    return previous


def current_stage():
    """Return the stage last marked by :func:`mark_stage`."""
    return _STATE["stage"]


def timeout_seconds(value, key="ddp_timeout_s"):
    """Check a collective time limit: a number of seconds > 0.

    Arguments
    ---------
    value : float or None
        The limit (None: :data:`DEFAULT_TIMEOUT_S`).
    key : str
        The yaml key, for the message.

    Returns
    -------
    float
        The limit in seconds.

    Example
    -------
    >>> timeout_seconds(None)
    1800.0
    >>> timeout_seconds(0)
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: ddp_timeout_s must be a number \
of seconds > 0, got 0
    """
    from speechbrain_relevance.errors import ConfigError

    if value is None:
        return DEFAULT_TIMEOUT_S
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or value == float("inf")
    ):
        raise ConfigError(
            f"{key} must be a number of seconds > 0, got {value!r}"
        )
    return float(value)


def init_distributed(run_opts, timeout_s=None):
    """Join the ``torchrun`` process group, with a limit on every wait.

    SpeechBrain's ``ddp_init_group`` with the collective time limit
    ``timeout_s`` (the recipes' ``ddp_timeout_s``; SpeechBrain waits two
    hours): a collective operation that waits longer for the other
    processes fails, and :func:`distributed_failure` names the stage it
    was in. Outside ``torchrun`` (no ``RANK`` in the environment), or if
    the group exists already, nothing is done.

    Arguments
    ---------
    run_opts : mapping
        SpeechBrain's run options (``distributed_backend``).
    timeout_s : float, optional
        The limit in seconds (default :data:`DEFAULT_TIMEOUT_S`).

    Returns
    -------
    bool
        Whether this call joined a group.

    Example
    -------
    >>> init_distributed({"distributed_backend": "gloo"})  # no torchrun
    False
    """
    import datetime

    import torch.distributed as dist
    from speechbrain.utils.distributed import get_local_rank, get_rank

    from speechbrain_relevance.errors import ConfigError

    limit = timeout_seconds(timeout_s)
    _STATE["timeout_s"] = limit
    rank, local_rank = get_rank(), get_local_rank()
    if rank is None or local_rank is None:
        return False
    if dist.is_available() and dist.is_initialized():
        return False
    backend = run_opts["distributed_backend"]
    available = {
        "gloo": dist.is_gloo_available,
        "nccl": dist.is_nccl_available,
        "mpi": dist.is_mpi_available,
    }
    if backend not in available:
        raise ConfigError(
            f"--distributed_backend={backend}: not a backend (gloo, nccl "
            "or mpi)"
        )
    if not available[backend]():
        raise ConfigError(
            f"--distributed_backend={backend}: not available in this torch"
        )
    if backend == "nccl":
        if int(local_rank) + 1 > torch.cuda.device_count():
            raise ConfigError(
                f"--distributed_backend=nccl: process {local_rank} has no "
                f"GPU ({torch.cuda.device_count()} here); use gloo on CPU"
            )
        torch.cuda.set_device(torch.device(f"cuda:{local_rank}"))
    mark_stage("joining the process group")
    dist.init_process_group(
        backend=backend,
        rank=int(rank),
        timeout=datetime.timedelta(seconds=limit),
    )
    return True


def run_on_main(func, args=None, kwargs=None, stage=None):
    """Run ``func`` on the main process while the others wait for it.

    SpeechBrain's ``run_on_main`` for work that may take long (data
    preparation, offline augmentation): the other processes wait in a
    group of their own whose limit is :data:`PREPARATION_TIMEOUT_S`, not
    the tight ``ddp_timeout_s`` of training's collectives. A failure of
    the main process still ends the wait (its connections close).

    Arguments
    ---------
    func : callable
        The work.
    args : list, optional
        Its positional arguments.
    kwargs : dict, optional
        Its keyword arguments.
    stage : str, optional
        The stage to mark (:func:`mark_stage`).

    Returns
    -------
    object
        ``func``'s result on the main process, None on the others.

    Example
    -------
    >>> run_on_main(sum, args=[[1, 2]], stage="adding")
    3
    """
    import datetime

    import torch.distributed as dist
    from speechbrain.utils.distributed import (
        MainProcessContext,
        if_main_process,
    )

    if stage is not None:
        mark_stage(stage)
    args, kwargs = list(args or []), dict(kwargs or {})
    if not (dist.is_available() and dist.is_initialized()):
        return func(*args, **kwargs)
    if _LONG_WAIT["group"] is None:
        # A collective: every process creates it at its first call.
        _LONG_WAIT["group"] = dist.new_group(
            backend="gloo",
            timeout=datetime.timedelta(seconds=PREPARATION_TIMEOUT_S),
        )
    result = None
    if if_main_process():
        with MainProcessContext():
            result = func(*args, **kwargs)
    dist.barrier(group=_LONG_WAIT["group"])
    return result


#: Texts of torch's errors for a collective that timed out.
_TIMED_OUT = ("timed out", "timeout", "watchdog caught collective")
#: Texts of torch's errors for a process that went away.
_LOST = (
    "connection reset by peer",
    "connection closed by peer",
    "broken pipe",
    "connection refused",
    "socket closed",
)


def distributed_failure(error):
    """Describe a failed collective operation in one line, naming the stage.

    Arguments
    ---------
    error : BaseException
        An exception from a collective operation (gloo's and NCCL's are
        ``RuntimeError`` s that name no stage).

    Returns
    -------
    str or None
        The message, or None if ``error`` is not a failed collective of
        an initialised process group.

    Example
    -------
    >>> distributed_failure(RuntimeError("x")) is None  # no process group
    True
    """
    import torch.distributed as dist

    if not isinstance(error, RuntimeError):
        return None
    if not (dist.is_available() and dist.is_initialized()):
        return None
    text = " ".join(str(error).split())
    lowered = text.lower()
    backend_error = type(error).__name__ == "DistBackendError"
    from_transport = "gloo" in lowered or "nccl" in lowered or backend_error
    if not from_transport:
        return None
    rank = dist.get_rank()
    where = f"rank {rank} of {dist.get_world_size()}"
    stage = current_stage()
    if any(t in lowered for t in _LOST):
        return (
            f"{where}: another process stopped while this one was at stage "
            f"'{stage}' (see that process's error above)"
        )
    if any(t in lowered for t in _TIMED_OUT):
        limit = _STATE["timeout_s"]
        limit_text = f"ddp_timeout_s={limit:g} s" if limit else "its limit"
        return (
            f"{where}: waited more than {limit_text} for the other "
            f"processes at stage '{stage}': a collective operation they "
            "did not join, or a process far slower than the others (raise "
            "--ddp_timeout_s if the stage needs longer)"
        )
    return f"{where}: collective operation failed at stage '{stage}': {text}"


def check_same_everywhere(value, what):
    """Refuse a value that differs between the processes (e.g. batch counts).

    Every process must run as many training batches as the others: a
    process with one batch more waits for ever for the others in the
    gradient averaging of its last batch. The values of all processes are
    gathered (a collective: every process calls this) and compared.

    Arguments
    ---------
    value : object
        This process's value (comparable with ``==``, picklable).
    what : str
        What it is, for the message (e.g. ``"training batches in epoch
        3"``).

    Returns
    -------
    object
        ``value``.

    Raises
    ------
    speechbrain_relevance.errors.ConfigError
        Naming the value of every process.

    Example
    -------
    >>> check_same_everywhere(12, "training batches")  # one process
    12
    """
    import torch.distributed as dist

    from speechbrain_relevance.errors import ConfigError

    if not (dist.is_available() and dist.is_initialized()):
        return value
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    if any(v != values[0] for v in values):
        listed = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
        raise ConfigError(
            f"the processes disagree on the {what} ({listed}) at stage "
            f"'{current_stage()}': they would wait for each other for ever"
        )
    return value
