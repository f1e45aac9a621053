"""Learnable Cos-Gauss front-end and multi-head relevance for SpeechBrain.

Implements "multi-head relevance weighting" for learning audio
representations from raw waveforms: a learnable cosine-modulated Gaussian
filterbank, the multi-head relevance network, the paper's classifiers and
recipe components.
"""

__version__ = "0.1.0"
