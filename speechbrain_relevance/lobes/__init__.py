"""SpeechBrain lobes: learnable front-ends and relevance weighting.

``[batch, time]`` waveforms in, ``[batch, frames, features]`` out.
"""

from speechbrain_relevance.lobes.compression import (
    PCEN,
    LogCompression,
    make_compression,
)
from speechbrain_relevance.lobes.filterbanks import (
    CosGaussFilterbank,
    LearnableFilterbank,
    SincFilterbank,
    length_in_samples,
)
from speechbrain_relevance.lobes.frontend import RelevanceFrontEnd
from speechbrain_relevance.lobes.functional import valid_deltas
from speechbrain_relevance.lobes.mel import MelFilterbank
from speechbrain_relevance.lobes.relevance import (
    MultiHeadRelevance,
    RelevanceHead,
    minmax_scale,
)

__all__ = [
    "CosGaussFilterbank",
    "LearnableFilterbank",
    "LogCompression",
    "MelFilterbank",
    "MultiHeadRelevance",
    "PCEN",
    "RelevanceFrontEnd",
    "RelevanceHead",
    "SincFilterbank",
    "length_in_samples",
    "make_compression",
    "minmax_scale",
    "valid_deltas",
]
