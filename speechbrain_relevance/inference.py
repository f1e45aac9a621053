"""Ready-to-use classifiers from exported model folders.

A model folder (written by :mod:`speechbrain_relevance.export`, laid out
like a HuggingFace SpeechBrain model) holds::

    hyperparams.yaml        front-end, relevance (if any), classifier,
                            labels, sample rate, audio policy, pretrainer
    compute_features.ckpt   one state dict per module
    relevance.ckpt
    classifier.ckpt
    label_encoder.txt       SpeechBrain CategoricalEncoder format
    README.md               model card

:class:`RelevanceClassifier` loads such a folder, from a local path or a
hub id, with ``RelevanceClassifier.from_hparams(source=...)`` and
classifies audio files or batches of waveforms; it also returns the
learned representation, the relevance masks and the weighted, scaled
representation the classifier reads (the paper's Figure 3).

Loading is independent of the current directory: the exported
``hyperparams.yaml`` names no file paths. The :class:`ModelFolderPretrainer`
it declares finds every file next to ``hyperparams.yaml`` in the
``source`` given to ``from_hparams`` (a relative ``source`` is taken
relative to the current directory at the time of the call, as any path
would be). Checkpoints are read with ``torch.load(..., weights_only=True)``
stated explicitly, so that no environment variable
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) can turn on arbitrary unpickling.
Loading ``hyperparams.yaml`` itself still runs the Python objects it
names: only load models from sources you trust.

Authors
 * speechbrain-relevance developers
"""

import hashlib
import inspect
import logging
import os
import pathlib

import torch
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.inference.interfaces import Pretrained
from speechbrain.utils.fetching import FetchFrom, FetchSource, guess_source
from speechbrain.utils.parameter_transfer import Pretrainer

from speechbrain_relevance.checkpoint_files import load_checkpoint_file
from speechbrain_relevance.data.audio import fit_length, load_audio
from speechbrain_relevance.errors import ConfigError
from speechbrain_relevance.pipeline import (
    CLASSIFIER_INPUTS,
    MODULE_NAMES,
    ClipPolicy,
    Representation,
    pipeline_of,
)

__all__ = [
    "CLASSIFIER_INPUTS",
    "HPARAMS_FILE",
    "LABEL_ENCODER_FILE",
    "ModelFolderPretrainer",
    "RelevanceClassifier",
    "Representation",
    "load_label_encoder",
    "load_module_weights",
    "refresh_savedir",
]

logger = logging.getLogger(__name__)

#: Files a model folder must hold besides the module checkpoints.
HPARAMS_FILE = "hyperparams.yaml"
LABEL_ENCODER_FILE = "label_encoder.txt"
#: Written into a savedir: the source its files were fetched from.
SOURCE_MARKER = ".speechbrain_relevance_source"


def load_module_weights(module, path):
    """Load a module's state dict from ``path`` without arbitrary unpickling.

    The pretrainer's load hook for every ``torch.nn.Module``.
    ``weights_only=True`` is passed explicitly: SpeechBrain's own hook
    leaves it to torch's default, which the environment variable
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` can switch off. The load is
    strict, so a checkpoint of another architecture fails loudly.

    Arguments
    ---------
    module : torch.nn.Module
        The module to load into.
    path : str or pathlib.Path
        A ``torch.save``-d state dict.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "lin.ckpt")
    >>> torch.save(torch.nn.Linear(2, 1).state_dict(), path)
    >>> load_module_weights(torch.nn.Linear(2, 1), path)
    >>> load_module_weights(torch.nn.Linear(3, 1), path)
    Traceback (most recent call last):
    ...
    RuntimeError: .../lin.ckpt does not fit Linear: ...
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} not found")
    state = load_checkpoint_file(path)
    if not isinstance(state, dict):
        raise RuntimeError(
            f"{path} holds a {type(state).__name__}, not a state dict"
        )
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise RuntimeError(
            f"{path} does not fit {type(module).__name__}: {e}"
        ) from e


def load_label_encoder(encoder, path):
    """Load a ``CategoricalEncoder`` from ``path``, failing if it cannot.

    SpeechBrain's default hook (``load_if_possible``) returns quietly when
    the file is missing or corrupt, which would leave an empty encoder.

    Arguments
    ---------
    encoder : speechbrain.dataio.encoder.CategoricalEncoder
        The encoder to fill.
    path : str or pathlib.Path
        A file written by ``CategoricalEncoder.save``.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "label_encoder.txt")
    >>> enc = CategoricalEncoder()
    >>> enc.update_from_iterable(["park", "bus"])
    >>> enc.save(path)
    >>> loaded = CategoricalEncoder()
    >>> load_label_encoder(loaded, path)
    >>> loaded.ind2lab
    {0: 'park', 1: 'bus'}
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Label encoder {path} not found")
    try:
        encoder.load(path)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"{path} is not a label encoder file: {e}") from e


class ModelFolderPretrainer(Pretrainer):
    """Pretrainer that loads every file from the model folder, safely.

    Differences from SpeechBrain's ``Pretrainer``:

    * ``filenames`` maps loadables whose file is not ``<key>.ckpt`` (the
      label encoder's ``label_encoder.txt``) to their name in the same
      ``default_source`` as the checkpoints, so that the hyperparameters
      name no path (a bare relative path would be resolved against the
      current directory, an absolute one breaks when the folder moves).
    * For a local source, missing files are reported together, naming the
      folder, before anything is loaded (SpeechBrain links missing local
      files without complaint, and its label-encoder hook ignores a
      missing file).
    * ``torch.nn.Module`` loadables are loaded with
      :func:`load_module_weights` (``weights_only=True``, strict) and
      ``CategoricalEncoder`` loadables with :func:`load_label_encoder`,
      unless ``custom_hooks`` says otherwise.

    Arguments
    ---------
    collect_in : str, optional
        Folder to collect links or copies in (see ``Pretrainer``).
    loadables : dict, optional
        Key to object to load into.
    paths : dict, optional
        Key to explicit path; overrides the default source.
    custom_hooks : dict, optional
        Key to load function ``(obj, path)``.
    conditions : dict, optional
        Key to condition (see ``Pretrainer``).
    filenames : dict, optional
        Key to file name inside the default source, for files not named
        ``<key>.ckpt``.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> model = torch.nn.Linear(2, 1)
    >>> torch.save(model.state_dict(), os.path.join(folder, "model.ckpt"))
    >>> pretrainer = ModelFolderPretrainer(
    ...     loadables={"model": torch.nn.Linear(2, 1), "other": model}
    ... )
    >>> pretrainer.collect_files(default_source=folder)
    Traceback (most recent call last):
    ...
    FileNotFoundError: Model folder ... lacks other.ckpt (for 'other')...
    """

    def __init__(
        self,
        collect_in=None,
        loadables=None,
        paths=None,
        custom_hooks=None,
        conditions=None,
        filenames=None,
    ):
        super().__init__(
            collect_in=collect_in,
            loadables=loadables,
            paths=paths,
            custom_hooks=custom_hooks,
            conditions=conditions,
        )
        self.filenames = dict(filenames or {})

    def expected_files(self):
        """Return the file name each loadable is read from.

        Returns
        -------
        dict
            Loadable key to file name (without folder), for the loadables
            that come from the default source.
        """
        return {
            name: self.filenames.get(name, f"{name}.ckpt")
            for name in self.loadables
            if self.is_loadable(name) and name not in self.paths
        }

    def collect_files(self, default_source=None, **kwargs):
        """Locate (and link or download) every loadable's file.

        Arguments
        ---------
        default_source : str or pathlib.Path or FetchSource, optional
            The model folder or hub id, given by ``from_hparams``.
        **kwargs : dict
            ``local_strategy`` and ``fetch_config``, passed on.

        Returns
        -------
        dict
            Loadable key to local path.
        """
        _refuse_other_interface()
        expected = {}
        if default_source is not None:
            expected = self.expected_files()
            folder = _local_folder(default_source)
            if folder is not None:
                _check_model_folder(folder, expected)
            for name, filename in expected.items():
                if name in self.filenames:
                    self.paths[name] = _join_source(default_source, filename)
        try:
            return super().collect_files(
                default_source=default_source, **kwargs
            )
        except Exception as e:
            missing = _named_in_chain(e, expected.values())
            if not missing:
                raise
            # The hub's "not found" is deep in the chain: say it first.
            raise FileNotFoundError(
                f"Model {default_source} lacks {missing} (or it could not "
                f"be fetched): {type(e).__name__}: {_first_line(e)}"
            ) from e

    def load_collected(self):
        """Load every collected file with a safe hook."""
        for name, obj in self.loadables.items():
            if name in self.custom_hooks:
                continue
            if isinstance(obj, torch.nn.Module):
                self.custom_hooks[name] = load_module_weights
            elif isinstance(obj, CategoricalEncoder):
                self.custom_hooks[name] = load_label_encoder
        super().load_collected()


def _first_line(error):
    """Return the first line of an exception's message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _named_in_chain(error, filenames):
    """Return the first of ``filenames`` an exception chain mentions."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = str(error)
        for name in filenames:
            if name in text:
                return name
        error = error.__cause__ or error.__context__
    return None


def _refuse_other_interface():
    """Stop SpeechBrain's own interfaces from loading a project folder.

    ``EncoderClassifier.from_hparams`` loads a project model folder
    without complaint and then fails in ``classify_file`` on a module it
    expects (``mean_var_norm``). The pretrainer runs inside
    ``from_hparams``, whose frame holds the interface class (``cls``):
    anything but a :class:`RelevanceClassifier` is refused here, at load.
    """
    frame = inspect.currentframe()
    for _ in range(8):
        frame = frame.f_back if frame is not None else None
        if frame is None:
            return
        cls = frame.f_locals.get("cls")
        if isinstance(cls, type) and issubclass(cls, Pretrained):
            if not issubclass(cls, RelevanceClassifier):
                raise ValueError(
                    f"This model folder is a {RelevanceClassifier.__name__} "
                    "model (speechbrain_relevance), not a "
                    f"{cls.__name__} one: load it with "
                    "speechbrain_relevance.inference.RelevanceClassifier."
                    "from_hparams(source=...)"
                )
            return


def _local_folder(source):
    """Return ``source`` as an absolute local folder, or None if remote."""
    fetch_from, path = guess_source(
        str(source) if isinstance(source, pathlib.Path) else source
    )
    if fetch_from != FetchFrom.LOCAL:
        return None
    return os.path.abspath(path)


def _join_source(source, filename):
    """Return the path of ``filename`` inside a folder or hub source."""
    if isinstance(source, FetchSource):
        return FetchSource(source.FetchFrom, f"{source.path}/{filename}")
    folder = _local_folder(source)
    if folder is not None:
        # Absolute now, so that nothing later depends on the current
        # directory.
        return os.path.join(folder, filename)
    return f"{str(source).rstrip('/')}/{filename}"


def _refuse_run_folder(folder, hparams_file=HPARAMS_FILE):
    """Refuse a training run's folder (or any folder without a pretrainer).

    A training run's ``hyperparams.yaml`` builds the model but says
    nothing of where its weights are (no ``pretrainer``): loading it would
    fail on that key.

    Arguments
    ---------
    folder : str
        The folder given as ``source``.
    hparams_file : str
        Its hyperparameters file.

    Raises
    ------
    ValueError
        Naming the exporter for a run folder.
    """
    import re

    with open(os.path.join(folder, hparams_file), encoding="utf-8") as f:
        text = f.read()
    if re.search(r"^pretrainer\s*:", text, flags=re.M):
        return
    exporter = "python -m speechbrain_relevance.export"
    if os.path.isdir(os.path.join(folder, "save")) or re.search(
        r"^checkpointer\s*:", text, flags=re.M
    ):
        raise ValueError(
            f"{folder} is a training run's folder, not an exported model "
            f"folder: export it first ({exporter} {folder} <model_folder>, "
            "or sb-relevance-export) and load the model folder"
        )
    raise ValueError(
        f"{folder}/{hparams_file} has no pretrainer: not an exported model "
        f"folder (export a run with {exporter} <run_folder> "
        "<model_folder>)"
    )


def _check_model_folder(folder, expected):
    """Raise one clear error listing the files missing from ``folder``."""
    missing = [
        f"{filename} (for {name!r})"
        for name, filename in expected.items()
        if not os.path.isfile(os.path.join(folder, filename))
    ]
    if missing:
        raise FileNotFoundError(
            f"Model folder {folder} lacks {', '.join(missing)}. A model "
            f"folder holds {HPARAMS_FILE}, one <module>.ckpt per module of "
            f"its pretrainer and {LABEL_ENCODER_FILE}; re-export it with "
            "python -m speechbrain_relevance.export <run> <folder>."
        )


def _same_file(a, b):
    """Whether two paths hold the same bytes (one may link to the other)."""
    if os.path.samefile(a, b):
        return True
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    digests = []
    for path in (a, b):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        digests.append(digest.digest())
    return digests[0] == digests[1]


def refresh_savedir(source, savedir):
    """Remove a savedir's files that are not the model folder's own.

    SpeechBrain's fetch returns a file already in the savedir as it is,
    so a savedir used before for another model would give that model's
    weights. Every file of ``source`` whose savedir counterpart differs
    (by size and SHA-256, or a link elsewhere) is removed, to be fetched
    again; a warning names both folders.

    Arguments
    ---------
    source : str
        The local model folder.
    savedir : str
        The savedir given to ``from_hparams``.

    Returns
    -------
    list of str
        The names of the files removed.

    Example
    -------
    >>> import tempfile
    >>> a, b, save = (tempfile.mkdtemp() for _ in range(3))
    >>> for folder, text in ((a, "A"), (b, "B")):
    ...     with open(os.path.join(folder, "model.ckpt"), "w") as f:
    ...         _ = f.write(text)
    >>> os.symlink(os.path.join(a, "model.ckpt"),
    ...            os.path.join(save, "model.ckpt"))
    >>> refresh_savedir(a, save)
    []
    >>> refresh_savedir(b, save)
    ['model.ckpt']
    """
    source, savedir = os.path.abspath(source), os.path.abspath(savedir)
    if not os.path.isdir(savedir) or os.path.samefile(source, savedir):
        return []
    stale = []
    for name, src in sorted(_savedir_counterparts(source, savedir).items()):
        dst = os.path.join(savedir, name)
        if os.path.isfile(dst) and _same_file(src, dst):
            continue
        os.remove(dst)
        stale.append(name)
    if stale:
        logger.warning(
            "Savedir %s held %s of another model, not those of %s: "
            "fetching them again",
            savedir,
            ", ".join(stale),
            source,
        )
    return stale


def _savedir_counterparts(source, savedir):
    """Map a savedir's files to the model folder's files they come from.

    A file of the same name, or, for the pretrainer's ``<name>.ckpt``
    (it names every fetched file after its loadable), the folder's one
    file ``<name>.*`` (``label_encoder.ckpt`` is ``label_encoder.txt``).

    Returns
    -------
    dict
        Savedir file name to the model folder's file.
    """
    files = {
        name: os.path.join(source, name)
        for name in os.listdir(source)
        if os.path.isfile(os.path.join(source, name))
    }
    pairs = {}
    for name in os.listdir(savedir):
        if not os.path.lexists(os.path.join(savedir, name)):
            continue
        if name in files:
            pairs[name] = files[name]
            continue
        stem, ext = os.path.splitext(name)
        if ext != ".ckpt":
            continue
        same_stem = [f for f in files if os.path.splitext(f)[0] == stem]
        if len(same_stem) == 1:
            pairs[name] = files[same_stem[0]]
    return pairs


def _check_savedir_source(source, savedir):
    """Refuse a savedir filled from another source (hub models)."""
    marker = os.path.join(savedir, SOURCE_MARKER)
    if not os.path.isfile(marker):
        return
    with open(marker, encoding="utf-8") as f:
        previous = f.read().strip()
    if previous and previous != str(source):
        raise ValueError(
            f"Savedir {savedir} holds the files of {previous}, not of "
            f"{source}: they would be loaded instead. Use another savedir "
            "or empty this one."
        )


class RelevanceClassifier(Pretrained):
    """Classify audio with a front-end + relevance + classifier model.

    The counterpart of the recipes' ``RelevanceBrain`` at inference time:
    front-end (``compute_features``), multi-head relevance weighting and
    per-head min-max scaling (``relevance``; without it the features are
    min-max scaled as a whole), then the classifier, reading the heads as
    the ``classifier_input`` hyperparameter says:

    * ``deltas`` (DCASE2020 FCN): ``[x, delta, delta-delta]`` of each
      head in valid mode, heads concatenated along the bands.
    * ``sequence`` (UrbanSound8k CNN-LSTM): the heads concatenated along
      the bands, ``[batch, frames, bands]`` with relative lengths; with
      ``patch_frames`` set, cut into patches whose posteriors are combined
      per clip (``patch_aggregation``), as in the recipe's evaluation.

    Audio policy, as in training: waveforms are peak-normalised per clip
    (``x / (max|x| + 1e-4)``), then, with ``clip_duration`` set (the
    UrbanSound8k recipe's fixed clip length), zero-padded or cropped to
    it; otherwise clips shorter than ``min_duration`` seconds are
    zero-padded to it, so that the classifier has enough frames to run.
    DCASE models are not padded to their 10 s training length: the FCN
    averages over time and silence it never saw in training would only
    dilute short clips. Files of any sample rate and channel count are
    resampled and downmixed by :meth:`load_audio`.

    Hyperparameters: ``sample_rate``, ``labels``, ``classifier_input``,
    optional ``feature_norm`` (as in training: ``"minmax"``, the default,
    or ``"sentence"``), ``min_duration``, ``clip_duration``, ``patch_frames``,
    ``patch_hop``, ``patch_aggregation`` and ``label_encoder`` (loaded
    from ``label_encoder.txt``; built from ``labels`` if absent).
    Modules: ``compute_features``, ``classifier``, optional
    ``relevance``.

    Load an exported model folder, or the same folder shared on the
    HuggingFace hub, with ``from_hparams``::

        clf = RelevanceClassifier.from_hparams(source="path/or/hub-id")
        out_prob, score, index, text_lab = clf.classify_file("clip.wav")

    Arguments
    ---------
    *args : tuple
        See ``speechbrain.inference.interfaces.Pretrained``.
    **kwargs : dict
        See ``speechbrain.inference.interfaces.Pretrained``.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> from speechbrain_relevance.models import FCN
    >>> clf = RelevanceClassifier(
    ...     modules={
    ...         "compute_features": Fbank(sample_rate=16000, n_mels=16),
    ...         "classifier": FCN(n_classes=2, width=0.0625),
    ...     },
    ...     hparams={
    ...         "sample_rate": 16000,
    ...         "labels": ["park", "bus"],
    ...         "classifier_input": "deltas",
    ...         "min_duration": 0.5,
    ...     },
    ...     run_opts={"device": "cpu"},
    ... )
    >>> out_prob, score, index, text_lab = clf.classify_batch(
    ...     torch.randn(3, 4000)
    ... )
    >>> out_prob.shape, score.shape, index.shape, len(text_lab)
    (torch.Size([3, 2]), torch.Size([3]), torch.Size([3]), 3)
    >>> rep = clf.representation_batch(torch.randn(1, 16000))
    >>> rep.features.shape, rep.masks, rep.weighted.shape
    (torch.Size([1, 101, 16]), None, torch.Size([1, 101, 16]))
    """

    HPARAMS_NEEDED = ["sample_rate", "labels"]
    MODULES_NEEDED = ["compute_features", "classifier"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Pretrained checks the hparams but not the modules.
        for name in self.MODULES_NEEDED:
            if name not in self.mods:
                raise ValueError(
                    f"{type(self).__name__} needs a {name!r} module "
                    f"(got {sorted(self.mods)})"
                )
        hp = self.hparams
        self.labels = list(hp.labels)
        self.sample_rate = int(hp.sample_rate)
        self.pipeline = self._make_pipeline()
        policy = self.pipeline.clip_policy
        if policy.sample_rate != self.sample_rate:
            raise ValueError(
                f"The pipeline's clip_policy runs at {policy.sample_rate} Hz, "
                f"the model's sample_rate is {self.sample_rate} Hz"
            )
        self.label_encoder = self._make_label_encoder()

    def _make_pipeline(self):
        """Return the model's pipeline, on the loaded modules.

        Exported folders define it (``pipeline``, built from the training
        run's own); folders exported before it existed give its settings
        as separate keys (``classifier_input``, ``feature_norm``,
        ``clip_duration``, ``min_duration``, ``patch_*``), read here.
        """
        hp = self.hparams
        modules = {n: self.mods[n] for n in MODULE_NAMES if n in self.mods}
        clip_duration = getattr(hp, "clip_duration", None)
        pipeline = pipeline_of(hp, modules, clip_policy=ClipPolicy(
            sample_rate=self.sample_rate,
            clip_duration=clip_duration,
            # Those folders wrote min_duration beside a fixed clip length,
            # which it never affected.
            min_duration=(
                None if clip_duration
                else getattr(hp, "min_duration", None) or None
            ),
        ))
        if pipeline.clip_policy is None:
            raise ConfigError(
                "The pipeline has no clip_policy: inference needs the "
                "training run's audio policy"
            )
        return pipeline

    def _make_label_encoder(self):
        """Return the loaded label encoder, checked against ``labels``."""
        encoder = getattr(self.hparams, "label_encoder", None)
        if encoder is None:
            encoder = CategoricalEncoder()
            encoder.update_from_iterable(self.labels)
        decoded = [encoder.ind2lab.get(i) for i in range(len(encoder))]
        if decoded != self.labels:
            raise ValueError(
                f"The label encoder's labels {decoded} differ from the "
                f"hyperparameters' labels {self.labels}"
            )
        encoder.expect_len(len(self.labels))
        return encoder

    @classmethod
    def from_hparams(cls, source, hparams_file=HPARAMS_FILE, **kwargs):
        """Load a model folder (local path) or a hub model.

        Arguments
        ---------
        source : str or pathlib.Path
            An exported model folder, or a HuggingFace hub id of one.
            A relative folder is relative to the current directory.
        hparams_file : str
            Name of the hyperparameters file in ``source``.
        **kwargs : dict
            Passed to ``Pretrained.from_hparams`` (``savedir``,
            ``run_opts``, ``overrides``, ...).

        Returns
        -------
        RelevanceClassifier
            The loaded, frozen classifier in eval mode.
        """
        text = str(source)
        # Hub ids are "<owner>/<name>"; anything else path-like is a
        # folder, and a missing one should not be looked up on the hub.
        looks_local = (
            isinstance(source, pathlib.Path)
            or text.startswith((".", "/", "~"))
            or text.count("/") > 1
            or os.path.exists(text)
        )
        if looks_local:
            folder = os.path.abspath(os.path.expanduser(text))
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"Model folder {folder} not found")
            if not os.path.isfile(os.path.join(folder, hparams_file)):
                raise FileNotFoundError(
                    f"Model folder {folder} lacks {hparams_file}"
                )
            _refuse_run_folder(folder, hparams_file)
            source = folder
        savedir = kwargs.get("savedir")
        if savedir is not None and os.path.lexists(savedir) and (
            not os.path.isdir(savedir)
        ):
            raise NotADirectoryError(
                f"savedir {os.path.abspath(savedir)} is a file, not a "
                "folder: give a folder (new or used for this model only)"
            )
        if savedir is not None:
            # SpeechBrain's fetch reuses whatever a savedir holds, even
            # another model's files.
            if looks_local:
                refresh_savedir(source, savedir)
            else:
                _check_savedir_source(source, savedir)
        model = super().from_hparams(
            source, hparams_file=hparams_file, **kwargs
        )
        if savedir is not None and os.path.isdir(savedir):
            with open(
                os.path.join(savedir, SOURCE_MARKER), "w", encoding="utf-8"
            ) as f:
                f.write(str(source) + "\n")
        return model

    def load_audio(self, path, savedir=None):
        """Read a local audio file at the model's rate, mono.

        Any sample rate is resampled and any channel count averaged; the
        result is not normalised (the batch methods do that).

        Arguments
        ---------
        path : str
            Local audio file.
        savedir : None
            Unused; kept for the ``Pretrained`` signature.

        Returns
        -------
        torch.Tensor
            ``[time]`` waveform.

        Raises
        ------
        speechbrain_relevance.errors.AudioFileError
            If the file is missing, unreadable or empty (names the file).
        """
        del savedir
        return load_audio(str(path), sample_rate=self.sample_rate, mono=True)

    def prepare_batch(self, wavs, wav_lens=None, normalize=True):
        """Apply the training audio policy to a batch of waveforms.

        Each example's real samples are peak-normalised (``normalize``)
        and padded or cropped to ``clip_duration``, or padded to at least
        ``min_duration``; the batch is then padded again to its longest
        example.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` (or ``[time]``, one clip) at ``sample_rate``;
            multi-channel audio must be downmixed first.
        wav_lens : torch.Tensor, optional
            Relative lengths; None means all examples are full length.
        normalize : bool
            Peak-normalise each example; turn off only for waveforms
            that already are.

        Returns
        -------
        torch.Tensor
            ``[batch, time]`` waveforms on the model's device.
        torch.Tensor
            ``[batch]`` relative lengths.
        """
        wavs = torch.as_tensor(wavs)
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        if wavs.dim() != 2:
            # [batch, channels, time] and [batch, time, channels] cannot
            # be told apart from the shape: averaging the wrong axis gives
            # a confident wrong label. The caller downmixes.
            raise ValueError(
                "wavs must be [batch, time] (or one clip, [time]) at "
                f"{self.sample_rate} Hz, got shape {tuple(wavs.shape)}; "
                "downmix multi-channel audio first, e.g. wavs.mean(dim=1) "
                "for [batch, channels, time]"
            )
        wavs = wavs.float()
        batch, n_samples = wavs.shape
        if batch == 0 or n_samples == 0:
            raise ValueError(
                f"the input is empty (shape {tuple(wavs.shape)}): give at "
                "least one clip of at least one sample"
            )
        if wav_lens is None:
            wav_lens = torch.ones(batch)
        wav_lens = torch.as_tensor(wav_lens, dtype=torch.float32).cpu()
        if wav_lens.shape != (batch,):
            raise ValueError(
                f"wav_lens must have shape [{batch}], got "
                f"{tuple(wav_lens.shape)}"
            )
        # Non-finite samples or empty examples would come back as a label
        # with NaN probabilities: refuse them, naming the examples.
        bad_lens = [
            i for i, rel in enumerate(wav_lens.tolist())
            if not 0 < rel <= 1 or rel * n_samples < 0.5
        ]
        if bad_lens:
            raise ValueError(
                f"wav_lens of example(s) {bad_lens} is "
                f"{[round(float(wav_lens[i]), 6) for i in bad_lens]}: "
                "relative lengths must be in (0, 1] and cover at least "
                "one sample"
            )
        clips = []
        minimum = self.min_samples()
        for i, (wav, rel) in enumerate(zip(wavs, wav_lens)):
            n = max(1, min(n_samples, int(round(float(rel) * n_samples))))
            if n < minimum:
                # Training never saw a clip this short (preparation rejects
                # them); padded, it would still get a confident label.
                raise ValueError(
                    f"example {i} has {n} samples, shorter than one "
                    f"{minimum}-sample analysis frame of this model "
                    f"({minimum / self.sample_rate:.3f} s at "
                    f"{self.sample_rate} Hz)"
                )
            if not torch.isfinite(wav[:n]).all():
                raise ValueError(
                    f"example {i} holds NaN or infinite samples"
                )
            clips.append(self._fit_clip(wav[:n], normalize))
        longest = max(c.shape[0] for c in clips)
        out = torch.stack([fit_length(c, longest) for c in clips])
        lens = torch.tensor([c.shape[0] / longest for c in clips])
        return out.to(self.device), lens.to(self.device)

    def min_samples(self):
        """Return the shortest clip the model classifies: one frame.

        The front-end's analysis frame (its ``win_length`` in samples),
        or 25 ms for front-ends that do not say; the recipes' data
        preparation rejects shorter training clips.

        Returns
        -------
        int
            Samples at ``sample_rate``.
        """
        for module in self.mods.compute_features.modules():
            win = getattr(module, "win_length", None)
            if isinstance(win, int) and not isinstance(win, bool) and win > 0:
                return win
        return max(1, int(round(0.025 * self.sample_rate)))

    def _load_file(self, path):
        """Load a file as a one-clip batch; refuse one shorter than a frame."""
        wav = self.load_audio(path)
        minimum = self.min_samples()
        if wav.shape[0] < minimum:
            raise ValueError(
                f"{path}: {wav.shape[0]} samples at {self.sample_rate} Hz "
                f"({wav.shape[0] / self.sample_rate:.4f} s), shorter than one "
                f"{minimum / self.sample_rate:.3f} s analysis frame of this "
                "model"
            )
        return wav.unsqueeze(0)

    def _fit_clip(self, wav, normalize):
        """Prepare one clip's real samples with the run's clip policy."""
        policy = self.pipeline.clip_policy
        if normalize == policy.normalize:
            return policy(wav)
        # Waveforms the caller already normalised: the policy's lengths
        # without its normalisation.
        return ClipPolicy(**dict(policy.settings(), normalize=normalize))(wav)

    @torch.no_grad()
    def representation_batch(self, wavs, wav_lens=None, normalize=True):
        """Compute the learned representation of a batch (Figure 3).

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` waveforms at ``sample_rate`` (see
            :meth:`prepare_batch`).
        wav_lens : torch.Tensor, optional
            Relative lengths.
        normalize : bool
            Peak-normalise each example first (as in training).

        Returns
        -------
        Representation
            Front-end output, relevance masks (or None), the weighted and
            scaled representation, and relative lengths.
        """
        wavs, lens = self.prepare_batch(wavs, wav_lens, normalize)
        return self.pipeline.represent(wavs, lens)

    def representation_file(self, path):
        """Compute the learned representation of an audio file.

        Arguments
        ---------
        path : str
            Audio file of any sample rate and channel count.

        Returns
        -------
        Representation
            With a batch dimension of 1.
        """
        return self.representation_batch(self._load_file(path))

    def encode_batch(self, wavs, wav_lens=None, normalize=True):
        """Return the representation the classifier reads.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` waveforms at ``sample_rate``.
        wav_lens : torch.Tensor, optional
            Relative lengths.
        normalize : bool
            Peak-normalise each example first (as in training).

        Returns
        -------
        torch.Tensor
            ``[batch, frames, bands]`` weighted, scaled representation.
        """
        return self.representation_batch(wavs, wav_lens, normalize).weighted

    @torch.no_grad()
    def classify_batch(self, wavs, wav_lens=None, normalize=True):
        """Classify a batch of waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` waveforms at ``sample_rate``.
        wav_lens : torch.Tensor, optional
            Relative lengths (the longest is 1.0); padding is ignored.
        normalize : bool
            Peak-normalise each example first (as in training).

        Returns
        -------
        out_prob : torch.Tensor
            ``[batch, n_classes]`` log-posteriors.
        score : torch.Tensor
            ``[batch]`` log-posterior of the best class.
        index : torch.Tensor
            ``[batch]`` index of the best class.
        text_lab : list of str
            The best classes' labels.
        """
        # Clips of different lengths are classified one at a time: the
        # result for a clip does not depend on its batch-mates.
        out_prob = self.pipeline(
            *self.prepare_batch(wavs, wav_lens, normalize)
        )
        score, index = torch.max(out_prob, dim=-1)
        text_lab = self.label_encoder.decode_torch(index)
        return out_prob, score, index, text_lab

    def classify_file(self, path):
        """Classify an audio file.

        Arguments
        ---------
        path : str
            Audio file of any sample rate and channel count.

        Returns
        -------
        out_prob : torch.Tensor
            ``[1, n_classes]`` log-posteriors.
        score : torch.Tensor
            ``[1]`` log-posterior of the best class.
        index : torch.Tensor
            ``[1]`` index of the best class.
        text_lab : list of str
            The best class's label.
        """
        return self.classify_batch(self._load_file(path))

    def forward(self, wavs, wav_lens=None):
        """Classify a batch (see :meth:`classify_batch`)."""
        return self.classify_batch(wavs, wav_lens)


