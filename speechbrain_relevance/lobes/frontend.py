"""A drop-in ``compute_features`` that chains a filterbank and relevance.

SpeechBrain recipes and inference interfaces call
``compute_features(wavs)`` on ``[batch, time]`` waveforms and expect
``[batch, frames, features]`` back (``EncoderClassifier.encode_batch`` then
runs ``mean_var_norm(feats, wav_lens)`` and the embedding model).
:class:`RelevanceFrontEnd` gives a learnable filterbank followed by
multi-head relevance weighting exactly that interface, so putting relevance
weighting into an existing classifier is a yaml edit of the
``compute_features`` block.

Authors
 * speechbrain-relevance developers
"""

import inspect

import torch.nn as nn


def takes_lengths(module):
    """Return whether a module's ``forward`` accepts relative lengths.

    SpeechBrain's ``Fbank`` and ``Leaf`` take the waveforms alone; the
    package's filterbanks also take ``wav_lens`` (padding-aware
    normalisation).

    Arguments
    ---------
    module : torch.nn.Module
        A front-end.

    Returns
    -------
    bool
        True if ``forward`` has a second parameter.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> from speechbrain_relevance.lobes import MelFilterbank
    >>> takes_lengths(Fbank()), takes_lengths(MelFilterbank(n_mels=8))
    (False, True)
    """
    params = list(inspect.signature(module.forward).parameters.values())
    positional = [
        p for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return len(positional) >= 2 or any(
        p.kind == p.VAR_POSITIONAL for p in params
    )


def _n_bands_of(filterbank):
    """Return a front-end's number of bands, where it says (else None)."""
    for owner in (filterbank, getattr(filterbank, "compute_fbanks", None)):
        for name in ("n_filters", "n_mels"):
            value = getattr(owner, name, None)
            if isinstance(value, int):
                return value
    return None


class RelevanceFrontEnd(nn.Module):
    """Filterbank followed by optional relevance weighting, as one module.

    ``forward(wavs, wav_lens=None)`` computes ``filterbank(wavs, wav_lens)``
    (``[batch, frames, n_bands]`` log energies) and, if a ``relevance``
    module is given, returns ``relevance(feats, wav_lens)``: the
    relevance-weighted representation, same shape. With
    ``relevance=None`` it is the bare filterbank, so one yaml key switches
    the weighting on and off.

    Both parts are sub-modules: their parameters train with the rest of
    the model and are saved and loaded with this module's ``state_dict``
    (keys ``filterbank.*`` and ``relevance.*``). List ``compute_features``
    among the checkpointer's recoverables and the pretrainer's loadables:
    unlike SpeechBrain's ``Fbank``, this front-end has weights.

    Interaction with ``InputNormalization`` (``mean_var_norm``). With the
    default ``scaling="minmax"``, :class:`MultiHeadRelevance` scales every
    head's output to [0, 1] per example, with one minimum and one maximum
    per head, taken over all of that head's bands and the real frames. It
    is an affine map per example and head, so it keeps the relative levels
    of the bands within a head. SpeechBrain's ``mean_var_norm`` then
    applies:

    * ``norm_type: sentence, std_norm: False`` (SpeechBrain's ECAPA sound
      classifiers): subtracts each band's mean over the real frames. The
      head-level scale of the min-max step survives; only per-band offsets
      go. This is the recommended setting.
    * ``std_norm: True`` (sentence or batch): also divides every band by
      its own standard deviation, which undoes the head-level scale and
      equalises the bands, so the weights can no longer make one band
      louder than another.
    * ``norm_type: global``: one fixed affine map per band, learned from
      data already in [0, 1]; harmless, but saved with the model.

    Padding. The relevance context windows and the min-max statistics only
    see the real frames when ``wav_lens`` is given; padding frames come
    out as zeros. SpeechBrain's ``EncoderClassifier.encode_batch`` calls
    ``compute_features(wavs)`` WITHOUT lengths, so for a batch of clips of
    different lengths the zero-padded tails (log energy ``log(log_eps)``)
    take part in the min-max statistics. Single clips (``classify_file``)
    and batches of equal-length clips are exact; for mixed lengths, call
    ``compute_features(wavs, wav_lens)`` yourself or classify one clip at a
    time.

    Arguments
    ---------
    filterbank : torch.nn.Module
        ``[batch, time]`` -> ``[batch, frames, n_bands]``, called as
        ``filterbank(wavs, wav_lens)``, e.g.
        :class:`~speechbrain_relevance.lobes.CosGaussFilterbank`, or as
        ``filterbank(wavs)`` if its ``forward`` takes the waveforms alone
        (SpeechBrain's ``Fbank`` and ``Leaf``): relevance weighting goes
        after any front-end.
    relevance : torch.nn.Module, optional
        ``[batch, frames, n_bands]`` -> same shape, called as
        ``relevance(feats, wav_lens)``, e.g.
        :class:`~speechbrain_relevance.lobes.MultiHeadRelevance`. None (the
        default) returns the filterbank's output unchanged.

    Example
    -------
    >>> import torch
    >>> from speechbrain_relevance.lobes import (
    ...     CosGaussFilterbank, MultiHeadRelevance)
    >>> front = RelevanceFrontEnd(
    ...     CosGaussFilterbank(n_filters=40, sample_rate=16000,
    ...                        win_length=400, hop_length=160,
    ...                        kernel_size=257),
    ...     MultiHeadRelevance(n_bands=40, n_heads=2),
    ... )
    >>> wavs = torch.randn(2, 16000)
    >>> feats = front(wavs, torch.tensor([1.0, 0.5]))
    >>> feats.shape
    torch.Size([2, 101, 40])
    >>> first = feats[0].detach()
    >>> float(first.min()), float(first.max())
    (0.0, 1.0)
    >>> feats, weights = front(wavs, return_masks=True)
    >>> weights.shape
    torch.Size([2, 101, 40])
    >>> RelevanceFrontEnd(front.filterbank)(wavs).shape
    torch.Size([2, 101, 40])

    On SpeechBrain's own log-mel ``Fbank``:

    >>> from speechbrain.lobes.features import Fbank
    >>> on_fbank = RelevanceFrontEnd(
    ...     Fbank(n_mels=40), MultiHeadRelevance(n_bands=40, n_heads=2))
    >>> on_fbank(wavs, torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 101, 40])
    """

    def __init__(self, filterbank, relevance=None):
        super().__init__()
        n_filters = _n_bands_of(filterbank)
        n_bands = getattr(relevance, "n_bands", None)
        # Catch a yaml that changes n_filters but not n_bands at build
        # time, not at the first batch of training.
        if None not in (n_filters, n_bands) and n_filters != n_bands:
            raise ValueError(
                f"The filterbank has {n_filters} filters but the relevance "
                f"module expects n_bands={n_bands}"
            )
        self.filterbank = filterbank
        self.relevance = relevance
        self._pass_lengths = takes_lengths(filterbank)

    def forward(self, wavs, wav_lens=None, return_masks=False):
        """Compute the (relevance-weighted) features.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` waveforms.
        wav_lens : torch.Tensor, optional
            Relative lengths in [0, 1]; they carry over unchanged to the
            frame axis, so pass the same tensor on to ``mean_var_norm``
            and the embedding model.
        return_masks : bool
            Also return the relevance weights (needs a ``relevance``
            module that supports ``return_masks``).

        Returns
        -------
        torch.Tensor
            ``[batch, frames, n_bands]`` features.
        torch.Tensor
            ``[batch, frames, n_bands]`` relevance weights in (0, 1), only
            with ``return_masks=True``.
        """
        if self._pass_lengths:
            feats = self.filterbank(wavs, wav_lens)
        else:
            feats = self.filterbank(wavs)
        if self.relevance is None:
            if return_masks:
                raise ValueError(
                    "return_masks=True needs a relevance module; this "
                    "front-end is a bare filterbank"
                )
            return feats
        if return_masks:
            return self.relevance(feats, wav_lens, return_masks=True)
        return self.relevance(feats, wav_lens)
