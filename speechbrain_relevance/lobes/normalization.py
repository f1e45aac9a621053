"""Per-example normalisation of a representation.

The recipes' Brain and the pretrained-model interface must normalise the
front-end's output the same way, or a shared model would see other inputs
than it was trained on: both call :func:`normalize_features`.

Authors
 * speechbrain-relevance developers
"""

import torch
from speechbrain.processing.features import InputNormalization

from speechbrain_relevance.lobes.relevance import frame_mask, minmax_scale

#: Names accepted by :func:`normalize_features`.
FEATURE_NORMS = ("minmax", "sentence")


def normalize_features(feats, lens=None, method="minmax"):
    """Normalise ``[batch, frames, bands]`` features per example.

    Arguments
    ---------
    feats : torch.Tensor
        ``[batch, frames, bands]`` features.
    lens : torch.Tensor, optional
        Relative lengths; statistics use the real frames only.
    method : str or callable or None
        ``"minmax"`` or None: min-max over all bands and real frames of
        each example, to [0, 1] (the paper). ``"sentence"``: every band
        to zero mean and unit variance over the example's real frames
        (SpeechBrain's ``InputNormalization(norm_type="sentence")``). A
        callable is called as ``method(feats, lens)``.

    Returns
    -------
    torch.Tensor
        Normalised features, same shape.

    Example
    -------
    >>> x = torch.randn(2, 50, 4) * 3 + 7
    >>> y = normalize_features(x, torch.ones(2), "sentence")
    >>> bool(y.mean(dim=1).abs().max() < 1e-4)
    True
    >>> float(normalize_features(x).max())
    1.0
    >>> normalize_features(x, method="zscore")
    Traceback (most recent call last):
    ...
    ValueError: feature_norm must be one of ('minmax', 'sentence') or ...
    """
    if method is None or method == "minmax":
        batch, n_frames = feats.shape[:2]
        mask = frame_mask(lens, n_frames, batch, feats.device)
        return minmax_scale(feats, mask)
    if method == "sentence":
        if lens is None:
            lens = torch.ones(feats.shape[0], device=feats.device)
        norm = InputNormalization(norm_type="sentence", std_norm=True)
        return norm(feats, lens)
    if callable(method) and not isinstance(method, str):
        return method(feats, lens)
    raise ValueError(
        f"feature_norm must be one of {FEATURE_NORMS} or a module, got "
        f"{method!r}"
    )
