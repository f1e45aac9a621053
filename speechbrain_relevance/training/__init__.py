"""Training components: LR schedules, metrics, checkpoints, DDP helpers."""

from speechbrain_relevance.training.checkpoints import AtomicCheckpointer
from speechbrain_relevance.training.distributed import (
    SyncBatchNormControl,
    resolve_sync_batchnorm,
    wrap_modules_for_ddp,
)
from speechbrain_relevance.training.metrics import ClassificationReport
from speechbrain_relevance.training.schedulers import (
    EpochLRScheduler,
    StepDecayScheduler,
    WarmRestartsScheduler,
    WarmupCosineScheduler,
)

__all__ = [
    "AtomicCheckpointer",
    "ClassificationReport",
    "EpochLRScheduler",
    "StepDecayScheduler",
    "SyncBatchNormControl",
    "WarmRestartsScheduler",
    "WarmupCosineScheduler",
    "resolve_sync_batchnorm",
    "wrap_modules_for_ddp",
]
