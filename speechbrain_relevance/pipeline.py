"""One classification pipeline, from waveform to log-posteriors.

Training (:class:`~speechbrain_relevance.training.brain.RelevanceBrain`),
inference (:class:`~speechbrain_relevance.inference.RelevanceClassifier`),
the analyses (:mod:`speechbrain_relevance.analysis`) and the exporter all
run a model through :class:`ClassificationPipeline`, so that they cannot
drift apart::

    waveform -> ClipPolicy (peak normalisation, crop, pad)
             -> compute_features (any [batch, time] -> [batch, frames,
                bands] front-end)
             -> relevance (multi-head weighting, skip-add, min-max per
                head) or, without it, the feature normalisation
             -> head split -> classifier input (deltas for the FCN, the
                frame sequence for the CNN-LSTM and the compact CNN)
             -> classifier -> (patch posteriors combined per clip)

The stage order is written once, in :meth:`ClassificationPipeline.scores`.
The module holds no augmentation and no training state: a Brain passes
its training augmentation as :class:`StageHooks`, called between the
stages in the paper's order (waveform augmentation -> weighting ->
scaling -> deltas -> SpecAugment -> crop -> concat -> mixup). It is built
in each recipe's yaml (the ``pipeline`` entry), saved with the run, and
written into an exported model's ``hyperparams.yaml`` by
:meth:`ClassificationPipeline.settings`, so that an exported folder builds
the same module as the run that trained it; :func:`pipeline_of` gives it
for any hyperparameters (built from separate keys for a yaml without
one) and checks that it runs the modules that are trained or loaded.

Authors
 * speechbrain-relevance developers
"""

import copy
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_relevance.data.audio import (
    fit_length,
    load_audio,
    peak_normalize,
)
from speechbrain_relevance.errors import ConfigError
from speechbrain_relevance.lobes.functional import valid_deltas
from speechbrain_relevance.lobes.normalization import normalize_features
from speechbrain_relevance.models import (
    aggregate_patch_posteriors,
    cut_patches,
)

#: How the classifier reads the per-head representation.
CLASSIFIER_INPUTS = ("deltas", "sequence")

#: The modules of a pipeline, in order.
MODULE_NAMES = ("compute_features", "relevance", "classifier")


class ClipPolicy:
    """How a clip's waveform is prepared, in training and at inference.

    A clip (its real samples, at ``sample_rate``) is peak-normalised
    (``x / (max|x| + 1e-4)``, over the whole clip), then either fitted
    to ``clip_duration`` seconds (zero-padded or cropped: the
    UrbanSound8k recipe's fixed clips), or cropped to ``max_duration``
    and zero-padded to ``min_duration`` where those are set.

    Arguments
    ---------
    sample_rate : int
        Rate the model runs at (Hz).
    clip_duration : float, optional
        Every clip padded or cropped to this many seconds.
    max_duration : float, optional
        Longer clips are cropped to this many seconds.
    min_duration : float, optional
        Shorter clips are zero-padded to this many seconds (a classifier
        that needs a minimum number of frames, e.g. the FCN).
    normalize : bool
        Peak-normalise each clip.

    Example
    -------
    >>> policy = ClipPolicy(sample_rate=8000, max_duration=0.5)
    >>> policy(torch.full((6000,), 0.5)).shape
    torch.Size([4000])
    >>> round(float(policy(torch.full((100,), 0.5)).max()), 3)
    1.0
    >>> ClipPolicy(8000, clip_duration=1.0)(torch.ones(100)).shape
    torch.Size([8000])
    """

    def __init__(
        self,
        sample_rate,
        clip_duration=None,
        max_duration=None,
        min_duration=None,
        normalize=True,
    ):
        self.sample_rate = int(sample_rate)
        self.clip_duration = clip_duration
        self.max_duration = max_duration
        self.min_duration = min_duration
        self.normalize = bool(normalize)
        for key in ("clip_duration", "max_duration", "min_duration"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ConfigError(
                    f"clip_policy: {key} must be a duration > 0 in seconds "
                    f"or null, got {value!r}"
                )
        if clip_duration and (max_duration or min_duration):
            raise ConfigError(
                "clip_policy: clip_duration fixes every clip's length; "
                "give it or max_duration/min_duration, not both"
            )

    def samples(self, seconds):
        """Return a duration in samples at the policy's rate."""
        return int(round(seconds * self.sample_rate))

    def __call__(self, wav):
        """Prepare one clip's real samples ``[time]``."""
        if self.normalize:
            wav = peak_normalize(wav)
        if self.clip_duration:
            return fit_length(wav, self.samples(self.clip_duration))
        if self.max_duration:
            wav = wav[..., : self.samples(self.max_duration)]
        if self.min_duration and wav.shape[-1] < self.samples(
            self.min_duration
        ):
            wav = fit_length(wav, self.samples(self.min_duration))
        return wav

    def load(self, path, strict=False):
        """Read an audio file and prepare it (training's data loading).

        Arguments
        ---------
        path : str
            Audio file.
        strict : bool
            Refuse a file at another rate or with several channels (the
            data preparation already checked them), instead of resampling
            and downmixing it (what inference does with any file).

        Returns
        -------
        torch.Tensor
            ``[time]`` prepared waveform.
        """
        wav = load_audio(
            str(path), sample_rate=self.sample_rate, mono=True, strict=strict
        )
        return self(wav)

    def settings(self):
        """Return the constructor arguments (for the exported yaml)."""
        return {
            "sample_rate": self.sample_rate,
            "clip_duration": self.clip_duration,
            "max_duration": self.max_duration,
            "min_duration": self.min_duration,
            "normalize": self.normalize,
        }

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"ClipPolicy({args})"


class Representation(NamedTuple):
    """What the model computes before the classifier, for a batch.

    Arguments
    ---------
    features : torch.Tensor
        ``[batch, frames, bands]`` front-end output (the learned
        representation, e.g. Cos-Gauss log band energies).
    masks : torch.Tensor or None
        ``[batch, frames, bands]`` relevance weights in (0, 1); None for
        models without relevance weighting.
    weighted : torch.Tensor
        ``[batch, frames, bands]`` the classifier's input representation:
        weighted (with the skip-add) and min-max scaled per head, or, for
        models without relevance, the normalised features.
    lengths : torch.Tensor
        ``[batch]`` relative lengths (1.0 for the longest example).
    """

    features: torch.Tensor
    masks: Optional[torch.Tensor]
    weighted: torch.Tensor
    lengths: torch.Tensor


class Scores(NamedTuple):
    """The classifier's outputs for a batch, before any softmax.

    Arguments
    ---------
    logits : torch.Tensor
        ``[examples, n_classes]``: one row per clip or, with
        ``patch_frames``, one per patch.
    owner : torch.Tensor or None
        ``[examples]`` the clip (batch index) of each patch; None when
        every row is a clip.
    """

    logits: torch.Tensor
    owner: Optional[torch.Tensor]


class StageHooks:
    """What to do between the pipeline's stages; by default nothing.

    :meth:`ClassificationPipeline.scores` calls the hooks in order. A
    Brain overrides them with its training augmentation (asteroid's
    ``postprocess_*`` methods play the same part); inference, analysis
    and evaluation pass none.

    Example
    -------
    >>> class Louder(StageHooks):
    ...     def waveforms(self, wavs, lens):
    ...         return 2 * wavs, lens
    >>> wavs, lens = Louder().waveforms(torch.ones(1, 4), torch.ones(1))
    >>> wavs.tolist()
    [[2.0, 2.0, 2.0, 2.0]]
    """

    def waveforms(self, wavs, lens):
        """Change the prepared waveforms ``[batch, time]``.

        Returns the waveforms and relative lengths to run on (a hook may
        grow the batch, e.g. SpeechBrain's ``Augmenter``).
        """
        return wavs, lens

    def head_inputs(self, heads, lens):
        """Change each head's classifier input (SpecAugment, crop)."""
        return heads

    def classifier_input(self, x, owner):
        """Change the joined input or its patches (mixup).

        ``owner`` is the clip of each patch, or None without patches.
        """
        return x


#: Hooks that change nothing.
NO_HOOKS = StageHooks()


def _unwrapped(module):
    """Return the module inside a DDP or ``torch.compile`` wrapper."""
    module = getattr(module, "module", module)
    return getattr(module, "_orig_mod", module)


class ClassificationPipeline(nn.Module):
    """Front-end, relevance, normalisation, heads and classifier as one.

    ``forward(wavs, wav_lens)`` gives the log-posteriors of a batch of
    prepared waveforms (see :class:`ClipPolicy`); the stages are public
    so that a Brain can augment between them.

    Arguments
    ---------
    compute_features : torch.nn.Module
        Front-end, ``[batch, time] -> [batch, frames, bands]``.
    classifier : torch.nn.Module
        ``classifier(x)`` for ``classifier_input="deltas"``, else
        ``classifier(x, lengths)``, giving logits.
    relevance : torch.nn.Module, optional
        :class:`~speechbrain_relevance.lobes.MultiHeadRelevance` (weighting,
        skip-add and min-max scaling per head); None for the baselines.
    feature_norm : str, optional
        ``"minmax"`` (per example, to [0, 1], the paper; the relevance lobe
        scales its heads itself) or ``"sentence"`` (per example and band,
        zero mean and unit variance over the real frames, after the
        relevance weighting when there is one).
    classifier_input : str
        ``"deltas"``: ``[x, delta, delta-delta]`` of each head in valid
        mode, heads concatenated along the bands (DCASE2020's FCN).
        ``"sequence"``: the heads concatenated along the bands,
        ``[batch, frames, bands]`` with relative lengths (UrbanSound8k's
        CNN-LSTM, FSDD's compact CNN).
    patch_frames : int, optional
        With ``"sequence"``: classify patches of this many frames and
        combine their posteriors per clip (``patch_aggregation``).
    patch_hop : int, optional
        Hop between patches (default: ``patch_frames``).
    patch_aggregation : str
        ``"mean_log_prob"``, ``"mean_prob"`` or ``"vote"`` (see
        :func:`~speechbrain_relevance.models.aggregate_patch_posteriors`).
    clip_policy : ClipPolicy, optional
        How clips are prepared (training's data loading and inference).

    Example
    -------
    >>> from speechbrain_relevance.lobes import (
    ...     CosGaussFilterbank, MultiHeadRelevance)
    >>> from speechbrain_relevance.models import CompactCNN
    >>> pipeline = ClassificationPipeline(
    ...     compute_features=CosGaussFilterbank(
    ...         n_filters=8, sample_rate=8000, win_length=200,
    ...         hop_length=80, kernel_size=129),
    ...     relevance=MultiHeadRelevance(n_bands=8, n_heads=2, context=2),
    ...     classifier=CompactCNN(n_bands=8, n_classes=3, channels=[4]),
    ...     clip_policy=ClipPolicy(sample_rate=8000, max_duration=1.5),
    ... ).eval()
    >>> pipeline(torch.randn(2, 4000), torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 3])
    >>> rep = pipeline.represent(torch.randn(1, 4000), torch.ones(1))
    >>> rep.features.shape, rep.masks.shape
    (torch.Size([1, 51, 8]), torch.Size([1, 51, 8]))
    >>> [h.shape[2] for h in pipeline.split_heads(rep.weighted)]
    [4, 4]
    """

    def __init__(
        self,
        compute_features,
        classifier,
        relevance=None,
        feature_norm="minmax",
        classifier_input="sequence",
        patch_frames=None,
        patch_hop=None,
        patch_aggregation="mean_log_prob",
        clip_policy=None,
    ):
        super().__init__()
        if classifier_input not in CLASSIFIER_INPUTS:
            raise ConfigError(
                f"classifier_input must be one of {CLASSIFIER_INPUTS}, got "
                f"{classifier_input!r}"
            )
        if patch_frames is not None and classifier_input != "sequence":
            raise ConfigError(
                "patch_frames needs classifier_input='sequence' (patches of "
                "the frame sequence)"
            )
        if feature_norm not in (None, "minmax", "sentence") and not callable(
            feature_norm
        ):
            raise ConfigError(
                "feature_norm must be 'minmax', 'sentence' or a callable "
                f"norm(feats, lens), got {feature_norm!r}"
            )
        self.compute_features = compute_features
        self.relevance = relevance
        self.classifier = classifier
        self.feature_norm = feature_norm
        self.classifier_input = classifier_input
        self.patch_frames = patch_frames
        self.patch_hop = patch_hop
        self.patch_aggregation = patch_aggregation
        self.clip_policy = clip_policy

    @classmethod
    def from_keys(cls, modules, hparams, classifier_input=None,
                  clip_policy=None):
        """Build a pipeline from separate hyperparameter keys.

        For yamls without a ``pipeline`` entry and model folders exported
        before it existed: ``feature_norm``, ``classifier_input`` (default
        ``"sequence"``) and the ``patch_*`` keys.

        Arguments
        ---------
        modules : mapping
            ``compute_features``, ``classifier`` and, optionally,
            ``relevance``.
        hparams : dict or namespace
            The hyperparameters.
        classifier_input : str, optional
            Overrides ``hparams``' ``classifier_input``.
        clip_policy : ClipPolicy, optional
            The clip policy.

        Returns
        -------
        ClassificationPipeline
            The pipeline.

        Example
        -------
        >>> modules = {"compute_features": nn.Identity(),
        ...            "classifier": nn.Identity()}
        >>> p = ClassificationPipeline.from_keys(
        ...     modules, {"feature_norm": "sentence",
        ...               "classifier_input": "deltas"})
        >>> p.settings()["feature_norm"], p.settings()["classifier_input"]
        ('sentence', 'deltas')
        """

        def get(key, default=None):
            if isinstance(hparams, dict):
                return hparams.get(key, default)
            return getattr(hparams, key, default)

        found = {n: modules[n] for n in MODULE_NAMES if n in modules}
        # None (the key left out) is the paper's min-max; anything else is
        # checked by the constructor, naming the options.
        norm = get("feature_norm")
        return cls(
            compute_features=found["compute_features"],
            relevance=found.get("relevance"),
            classifier=found["classifier"],
            feature_norm="minmax" if norm is None else norm,
            classifier_input=(
                classifier_input or get("classifier_input") or "sequence"
            ),
            patch_frames=get("patch_frames"),
            patch_hop=get("patch_hop"),
            patch_aggregation=get("patch_aggregation") or "mean_log_prob",
            clip_policy=clip_policy,
        )

    # ------------------------------------------------------------------
    # Serialisation
    def settings(self):
        """Return everything but the modules, as plain values.

        Returns
        -------
        dict
            The constructor's keyword arguments other than the modules
            (``clip_policy`` as its own settings, or None): what an
            exported ``hyperparams.yaml`` writes to build this pipeline
            again around the exported modules.
        """
        return {
            "feature_norm": self.feature_norm,
            "classifier_input": self.classifier_input,
            "patch_frames": self.patch_frames,
            "patch_hop": self.patch_hop,
            "patch_aggregation": self.patch_aggregation,
            "clip_policy": (
                None if self.clip_policy is None
                else self.clip_policy.settings()
            ),
        }

    def with_modules(self, modules):
        """Return the same pipeline running other module objects.

        A Brain under DDP holds wrapped modules; the pipeline built by the
        yaml holds the bare ones. This gives a pipeline that calls the
        wrappers (so that gradients are synchronised), sharing settings.

        Arguments
        ---------
        modules : mapping
            Module name (``compute_features``, ``relevance``,
            ``classifier``) to the module to use; missing names keep
            this pipeline's module.

        Returns
        -------
        ClassificationPipeline
            A shallow copy.
        """
        other = copy.copy(self)
        other._modules = dict(self._modules)
        for name in MODULE_NAMES:
            if name in modules and self._modules.get(name) is not None:
                other._modules[name] = modules[name]
        return other

    def other_module(self, modules):
        """Name a module the pipeline and ``modules`` do not share.

        Arguments
        ---------
        modules : mapping
            Module name to the module that was loaded (missing or None:
            no such module).

        Returns
        -------
        str or None
            The first of :data:`MODULE_NAMES` that the pipeline runs as
            another object than ``modules`` holds (or runs where
            ``modules`` has none, or the other way round); None if they
            agree, i.e. the pipeline runs exactly the loaded weights. A
            DDP or ``torch.compile`` wrapper counts as what it wraps.

        Example
        -------
        >>> p = ClassificationPipeline(nn.Identity(), nn.Identity())
        >>> p.other_module({"compute_features": p.compute_features,
        ...                 "classifier": p.classifier})
        >>> p.other_module({"compute_features": p.compute_features,
        ...                 "classifier": nn.Identity()})
        'classifier'
        """
        for name in MODULE_NAMES:
            mine = getattr(self, name, None)
            theirs = modules.get(name)
            if _unwrapped(mine) is not _unwrapped(theirs):
                return name
        return None

    # ------------------------------------------------------------------
    # Stages
    def represent(self, wavs, wav_lens):
        """Front-end, relevance weighting and normalisation.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` prepared waveforms.
        wav_lens : torch.Tensor
            ``[batch]`` relative lengths.

        Returns
        -------
        Representation
            Features, masks (None without relevance), the weighted and
            normalised representation, and the lengths.
        """
        feats = self.compute_features(wavs)
        norm = self.feature_norm
        if self.relevance is not None:
            # The relevance lobe min-max scales each head itself.
            weighted, masks = self.relevance(
                feats, wav_lens, return_masks=True
            )
            if norm not in (None, "minmax"):
                weighted = normalize_features(weighted, wav_lens, norm)
        else:
            weighted = normalize_features(feats, wav_lens, norm)
            masks = None
        return Representation(feats, masks, weighted, wav_lens)

    def head_bands(self, n_bands):
        """Return the band indices of each head (one head without relevance).

        Arguments
        ---------
        n_bands : int
            Bands of the representation.

        Returns
        -------
        list of list of int
            Band indices per head.
        """
        if self.relevance is None:
            return [list(range(n_bands))]
        return [list(b) for b in _unwrapped(self.relevance).head_bands()]

    def split_heads(self, weighted):
        """Split ``[batch, frames, bands]`` into the per-head tensors."""
        if self.relevance is None:
            return [weighted]
        return [
            weighted.index_select(
                2, torch.tensor(idx, device=weighted.device)
            )
            for idx in self.head_bands(weighted.shape[2])
        ]

    def head_inputs(self, heads):
        """Turn each head into what the classifier reads.

        ``"deltas"``: ``[batch, 3, bands_h, frames - 8]`` (valid-mode
        deltas and delta-deltas); ``"sequence"``: unchanged.
        """
        if self.classifier_input == "deltas":
            return [valid_deltas(h) for h in heads]
        return list(heads)

    @staticmethod
    def join(heads):
        """Concatenate the heads along the band axis (in head order)."""
        return torch.cat(heads, dim=2)

    def logits(self, x, lengths):
        """Run the classifier on its (joined) input.

        Arguments
        ---------
        x : torch.Tensor
            The joined head inputs (or patches of them).
        lengths : torch.Tensor
            Relative lengths (unused by the FCN).

        Returns
        -------
        torch.Tensor
            ``[batch, n_classes]`` logits.
        """
        if self.classifier_input == "deltas":
            return self.classifier(x)
        return self.classifier(x, lengths)

    def patches(self, x, lengths):
        """Cut the joined sequence into patches (``patch_frames``).

        Returns
        -------
        tuple
            ``(patches, owner, patch_lengths)`` as
            :func:`~speechbrain_relevance.models.cut_patches`.
        """
        return cut_patches(x, lengths, self.patch_frames, self.patch_hop)

    # ------------------------------------------------------------------
    # Whole pipeline
    def scores(self, wavs, wav_lens, hooks=NO_HOOKS):
        """Run every stage, calling ``hooks`` between them.

        The one place that writes the stage order: representation (front-
        end, relevance, normalisation), heads, classifier input per head,
        join, patches (``patch_frames``), classifier.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` prepared waveforms.
        wav_lens : torch.Tensor
            ``[batch]`` relative lengths.
        hooks : StageHooks
            Called between the stages (training augmentation).

        Returns
        -------
        Scores
            Logits per clip, or per patch with the clip of each.
        """
        wavs, wav_lens = hooks.waveforms(wavs, wav_lens)
        rep = self.represent(wavs, wav_lens)
        heads = self.head_inputs(self.split_heads(rep.weighted))
        x = self.join(hooks.head_inputs(heads, wav_lens))
        owner, lengths = None, wav_lens
        if self.patch_frames:
            x, owner, lengths = self.patches(x, wav_lens)
        x = hooks.classifier_input(x, owner)
        return Scores(self.logits(x, lengths), owner)

    def aggregate(self, logits, owner):
        """Clip log-posteriors from patch logits (``patch_aggregation``).

        Arguments
        ---------
        logits : torch.Tensor
            ``[patches, n_classes]``.
        owner : sequence or torch.Tensor
            The clip of each patch.

        Returns
        -------
        list
            The clips, in order of first appearance.
        torch.Tensor
            ``[clips, n_classes]`` log-posteriors.
        """
        return aggregate_patch_posteriors(
            logits, owner, method=self.patch_aggregation
        )

    def log_posteriors(self, scores):
        """Log-posteriors ``[batch, n_classes]`` per clip of :meth:`scores`."""
        if scores.owner is None:
            return F.log_softmax(scores.logits, dim=-1)
        return self.aggregate(scores.logits, scores.owner)[1]

    def forward(self, wavs, wav_lens=None):
        """Log-posteriors of a batch, each clip independent of the others.

        In a padded batch the frames at a shorter clip's end would see its
        batch-mates' padding; a batch of clips of different lengths is
        therefore classified one clip at a time, exactly as each clip
        alone.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` prepared waveforms.
        wav_lens : torch.Tensor, optional
            ``[batch]`` relative lengths (None: all full length).

        Returns
        -------
        torch.Tensor
            ``[batch, n_classes]`` log-posteriors.
        """
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0], device=wavs.device)
        if not clip_lengths_differ(wav_lens):
            return self.log_posteriors(self.scores(wavs, wav_lens))
        return torch.cat([
            self.log_posteriors(self.scores(clip, one))
            for clip, one in each_clip(wavs, wav_lens)
        ])


def pipeline_of(hparams, modules, clip_policy=None):
    """Return the pipeline of a model's hyperparameters, on its modules.

    The one way every part of the project gets a model's pipeline:
    training, inference and the analyses. A yaml's ``pipeline`` entry is
    returned after checking that it runs exactly ``modules`` (those
    trained, checkpointed or loaded); hyperparameters without one (runs
    and exported folders of earlier versions, the ECAPA swap) get one
    built from their separate keys (:meth:`ClassificationPipeline.
    from_keys`).

    Arguments
    ---------
    hparams : dict or namespace
        The hyperparameters.
    modules : mapping
        Module name (:data:`MODULE_NAMES`) to the module trained or
        loaded under it; names it lacks are modules the model has not.
    clip_policy : ClipPolicy, optional
        The clip policy of a pipeline built from keys.

    Returns
    -------
    ClassificationPipeline
        The pipeline.

    Raises
    ------
    ConfigError
        The yaml's pipeline runs another module than ``modules`` holds
        (its weights would never be trained or loaded).

    Example
    -------
    >>> p = ClassificationPipeline(nn.Identity(), nn.Identity())
    >>> pipeline_of({"pipeline": p}, {"compute_features": p.compute_features,
    ...                                "classifier": p.classifier}) is p
    True
    >>> pipeline_of({"pipeline": p}, {"compute_features": p.compute_features,
    ...                                "classifier": nn.Identity()})
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: the yaml's pipeline runs \
another classifier than its modules: ...
    """
    found = {n: modules[n] for n in MODULE_NAMES if n in modules}
    pipeline = (
        hparams.get("pipeline") if isinstance(hparams, dict)
        else getattr(hparams, "pipeline", None)
    )
    if pipeline is None:
        return ClassificationPipeline.from_keys(
            found, hparams, clip_policy=clip_policy
        )
    name = pipeline.other_module(found)
    if name is None:
        return pipeline
    if getattr(pipeline, name, None) is None or name not in found:
        inside = "pipeline" if name not in found else "modules"
        other = "modules" if inside == "pipeline" else "pipeline"
        problem = f"{name} is in the yaml's {inside} but not in its {other}"
    else:
        problem = f"the yaml's pipeline runs another {name} than its modules"
    raise ConfigError(
        f"{problem}: a module the pipeline runs must be the one trained, "
        "checkpointed and loaded (the pipeline's entries !ref the modules')"
    )


def clip_policy_of(hparams):
    """Return the clip policy of a recipe's hyperparameters.

    Arguments
    ---------
    hparams : dict
        Loaded hyperparameters holding ``pipeline`` (with a
        ``clip_policy``), as every recipe yaml does.

    Returns
    -------
    ClipPolicy
        How the recipe prepares its clips.

    Example
    -------
    >>> clip_policy_of({"pipeline": None})
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: the yaml has no 'pipeline' ...
    """
    pipeline = hparams.get("pipeline")
    policy = getattr(pipeline, "clip_policy", None)
    if policy is None:
        raise ConfigError(
            "the yaml has no 'pipeline' with a 'clip_policy': the data "
            "loading, inference and export all prepare clips with it (see "
            "the recipe's hparams files for the two entries)"
        )
    return policy


def clip_lengths_differ(wav_lens):
    """Whether a batch holds clips of different lengths (padding).

    Example
    -------
    >>> clip_lengths_differ(torch.tensor([1.0, 1.0]))
    False
    >>> clip_lengths_differ(torch.tensor([1.0, 0.5]))
    True
    """
    return bool((wav_lens != wav_lens[0]).any())


def each_clip(wavs, wav_lens):
    """Yield every clip of a padded batch alone: ``([1, n], ones(1))``.

    Example
    -------
    >>> clips = list(each_clip(torch.ones(2, 10), torch.tensor([1.0, 0.3])))
    >>> [tuple(c.shape) for c, _ in clips]
    [(1, 10), (1, 3)]
    """
    n_samples = torch.round(wav_lens * wavs.shape[1]).long().tolist()
    one = torch.ones(1, device=wavs.device)
    for i, n in enumerate(n_samples):
        yield wavs[i:i + 1, :max(1, n)], one
