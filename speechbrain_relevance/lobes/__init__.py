"""SpeechBrain lobes: learnable front-ends and relevance weighting.

``[batch, time]`` waveforms in, ``[batch, frames, features]`` out.
"""

from speechbrain_relevance.lobes.filterbanks import (
    CosGaussFilterbank,
    LearnableFilterbank,
    SincFilterbank,
)
from speechbrain_relevance.lobes.frontend import RelevanceFrontEnd
from speechbrain_relevance.lobes.functional import valid_deltas
from speechbrain_relevance.lobes.relevance import (
    MultiHeadRelevance,
    RelevanceHead,
    minmax_scale,
)

__all__ = [
    "CosGaussFilterbank",
    "LearnableFilterbank",
    "MultiHeadRelevance",
    "RelevanceFrontEnd",
    "RelevanceHead",
    "SincFilterbank",
    "minmax_scale",
    "valid_deltas",
]
