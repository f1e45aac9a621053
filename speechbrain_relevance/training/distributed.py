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
its main-process helpers: ``speechbrain.utils.distributed.if_main_process``
and ``run_on_main``.

Authors
 * speechbrain-relevance developers
"""

import torch
from torch.nn import SyncBatchNorm
from torch.nn.parallel import DistributedDataParallel


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
