"""Data augmentation for the relevance-weighting recipes.

``spectrogram``: SpecAugment masks, random crop and mixup on the
``[batch, 3, bands, frames]`` features (per head or concatenated).
"""

from speechbrain_relevance.augment.spectrogram import (
    mixup,
    mixup_loss,
    random_crop,
    spec_augment,
)

__all__ = ["mixup", "mixup_loss", "random_crop", "spec_augment"]
