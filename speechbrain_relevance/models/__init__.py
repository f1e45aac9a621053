"""Classifiers of the paper: the FCN (DCASE2020) and the CNN-LSTM (USC).

Both return logits ``[batch, n_classes]``.
"""

from speechbrain_relevance.models.cnn_lstm import (
    CNNLSTM,
    aggregate_patch_posteriors,
    cut_patches,
    split_into_patches,
)
from speechbrain_relevance.models.fcn import FCN, ChannelAttention

__all__ = [
    "CNNLSTM",
    "FCN",
    "ChannelAttention",
    "aggregate_patch_posteriors",
    "cut_patches",
    "split_into_patches",
]
