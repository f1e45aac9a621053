"""Classifiers: the paper's FCN and CNN-LSTM, and a compact CNN.

The FCN classifies DCASE2020 scenes, the CNN-LSTM UrbanSound8k clips and
the compact CNN short clips such as FSDD's spoken digits.

Both return logits ``[batch, n_classes]``.
"""

from speechbrain_relevance.models.cnn_lstm import (
    CNNLSTM,
    aggregate_patch_posteriors,
    cut_patches,
    split_into_patches,
)
from speechbrain_relevance.models.compact_cnn import CompactCNN
from speechbrain_relevance.models.fcn import FCN, ChannelAttention

__all__ = [
    "CNNLSTM",
    "CompactCNN",
    "FCN",
    "ChannelAttention",
    "aggregate_patch_posteriors",
    "cut_patches",
    "split_into_patches",
]
