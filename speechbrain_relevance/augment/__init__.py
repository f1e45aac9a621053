"""Data augmentation for the relevance-weighting recipes.

``spectrogram``: SpecAugment masks, random crop and mixup on the
``[batch, 3, bands, frames]`` features (per head or concatenated).
``waveform``: a random time shift for SpeechBrain's ``Augmenter``.
``audio``: pitch shift, time stretch, noise and same-class mixing for
offline augmentation (imported on demand).
"""

from speechbrain_relevance.augment.spectrogram import (
    mixup,
    mixup_loss,
    random_crop,
    spec_augment,
)
from speechbrain_relevance.augment.waveform import RandomShift, shift_waveforms

__all__ = [
    "RandomShift",
    "mixup",
    "mixup_loss",
    "random_crop",
    "shift_waveforms",
    "spec_augment",
]
