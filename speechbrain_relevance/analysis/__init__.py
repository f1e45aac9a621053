r"""Analysis of trained models: the paper's figures and tables.

* :func:`load_trained` rebuilds the front-end, the relevance lobe (if any),
  the classifier and any other module (an embedding model) of a recipe
  run folder or an exported model folder.
* :mod:`speechbrain_relevance.analysis.figures`: Figure 2 (centre
  frequencies of the learnt filterbanks against mel, and the filters'
  frequency responses) and Figure 3 (mel spectrogram, learnt
  representation, relevance masks and final representation of a clip).
* :mod:`speechbrain_relevance.analysis.tables`: class-wise and per-device
  accuracy tables (Table 1 style) from the runs' ``test_results.json``,
  and the parameter counts of the complexity analysis.

Command line (see ``python -m speechbrain_relevance.analysis --help``)::

    python -m speechbrain_relevance.analysis <run_or_model_folder> \
        --out <dir> [--audio clip.wav ...] [--sinc <sincnet_run>] \
        [--compare <other_run> ...]

Authors
 * speechbrain-relevance developers
"""

import copy
import dataclasses
import os
import re
from typing import Any, Optional

import torch

from speechbrain_relevance.checkpoint_files import (
    find_model_checkpoint,
    load_checkpoint_file,
)
from speechbrain_relevance.errors import UserError
from speechbrain_relevance.pipeline import MODULE_NAMES, pipeline_of

# Training-only entries of a recipe's resolved yaml whose construction has
# side effects (global seeding, folders and log files under the original
# output folder, which may no longer exist): replaced by None on loading.
_TRAINING_ONLY = ("__set_seed", "checkpointer", "train_logger")

_TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_][\w.-]*)\s*:(.*)$", re.MULTILINE)


@dataclasses.dataclass
class TrainedModel:
    """The modules of a trained model and what describes them.

    Unpacks like a tuple into its first five fields::

        frontend, relevance, classifier, labels, sample_rate = model

    Arguments
    ---------
    compute_features : torch.nn.Module
        Front-end, waveforms ``[batch, time]`` to ``[batch, frames,
        bands]``.
    relevance : torch.nn.Module or None
        Multi-head relevance lobe, None for models without one.
    classifier : torch.nn.Module or None
        Classifier (None if the yaml has none).
    labels : list of str or None
        Class names in output order.
    sample_rate : int or None
        Sample rate the model expects, in Hz.
    name : str
        Display name (the yaml's ``system_name``, else the folder name).
    folder : str
        The folder the model was loaded from.
    checkpoint_dir : str
        The folder the ``<module>.ckpt`` files were read from.
    hparams : dict
        The loaded hyperparameters.
    initial_compute_features : torch.nn.Module or None
        The front-end as the configuration builds it before training (for
        :func:`~speechbrain_relevance.analysis.movement.filter_movement`),
        rebuilt with the yaml's ``seed`` so that random inits match.
    other_modules : dict
        The yaml's other ``modules`` (e.g. ``embedding_model``), loaded
        from their ``<name>.ckpt`` where the folder has one.
    pipeline : speechbrain_relevance.pipeline.ClassificationPipeline
        The model's pipeline on the loaded modules: the yaml's
        ``pipeline``, or, for a yaml without one (the ECAPA swap, runs of
        earlier versions), the front-end, relevance and ``feature_norm``
        as the recipes ran them.
    """

    compute_features: Any
    relevance: Optional[Any]
    classifier: Optional[Any]
    labels: Optional[list]
    sample_rate: Optional[int]
    name: str = ""
    folder: str = ""
    checkpoint_dir: str = ""
    hparams: dict = dataclasses.field(default_factory=dict, repr=False)
    initial_compute_features: Optional[Any] = dataclasses.field(
        default=None, repr=False
    )
    other_modules: dict = dataclasses.field(
        default_factory=dict, repr=False
    )
    pipeline: Optional[Any] = dataclasses.field(default=None, repr=False)

    def all_modules(self):
        """Every module of the model, by name, in pipeline order.

        The front-end, relevance lobe and classifier, then the yaml's
        other ``modules`` (for a SpeechBrain embedding classifier such as
        the ECAPA swap: ``mean_var_norm``, ``embedding_model``).

        Returns
        -------
        dict
            Name to ``torch.nn.Module``; modules the model lacks are left
            out.
        """
        found = {
            "compute_features": self.compute_features,
            "relevance": self.relevance,
            "classifier": self.classifier,
            **self.other_modules,
        }
        return {k: m for k, m in found.items() if m is not None}

    def __iter__(self):
        """Yield front-end, relevance, classifier, labels, sample rate."""
        yield self.compute_features
        yield self.relevance
        yield self.classifier
        yield self.labels
        yield self.sample_rate

    @property
    def abbreviations(self):
        """Label -> table column name, from the yaml (may be empty)."""
        return dict(self.hparams.get("abbreviations") or {})


def _overrides_for(yaml_text, folder):
    """Return overrides that load a saved yaml without side effects."""
    overrides = {}
    for key, value in _TOP_LEVEL_KEY.findall(yaml_text):
        if key in _TRAINING_ONLY:
            overrides[key] = None
        elif value.strip().startswith("!PLACEHOLDER"):
            # Placeholders of a saved model are paths to its own files
            # (e.g. where the checkpoints are); the folder itself is the
            # only sensible value.
            overrides[key] = folder
    return overrides


def load_trained(folder, checkpoint=None, device="cpu", max_key="acc"):
    """Load the trained modules of a run folder or an exported model folder.

    The folder's ``hyperparams.yaml`` is loaded with hyperpyyaml (a
    recipe's resolved copy or an inference yaml); training-only entries
    (seeding, checkpointer, train logger) are skipped and placeholders are
    set to the folder. Each of ``compute_features``, ``relevance`` and
    ``classifier`` found in the yaml then gets its parameters from
    ``<name>.ckpt`` (``torch.load(..., weights_only=True)``). For a run
    folder the checkpoint is the model as
    :func:`~speechbrain_relevance.checkpoint_files.find_model_checkpoint`
    finds it (the best by ``max_key``). As in the recipes,
    a relevance lobe defined in the yaml but absent from its ``modules``
    is not part of the model. The yaml's other ``modules`` (the
    ``embedding_model`` and ``mean_var_norm`` of a SpeechBrain embedding
    classifier) are loaded too, with SpeechBrain's checkpoint hooks, into
    ``other_modules``. The caller's random number generator state is left
    untouched.

    Arguments
    ---------
    folder : str
        Recipe output folder or exported model folder.
    checkpoint : str, optional
        Folder with the ``.ckpt`` files, overriding the search.
    device : str or torch.device
        Device to put the modules on.
    max_key : str
        Checkpoint meta key that ranks a run's checkpoints.

    Returns
    -------
    TrainedModel
        The modules in eval mode, labels, sample rate, name; unpacks into
        ``(compute_features, relevance, classifier, labels, sample_rate)``.

    Example
    -------
    >>> load_trained("/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: No hyperparams.yaml in /nonexistent
    """
    from hyperpyyaml import load_hyperpyyaml

    folder = os.path.abspath(folder)
    yaml_path = os.path.join(folder, "hyperparams.yaml")
    if not os.path.isfile(yaml_path):
        raise FileNotFoundError(f"No hyperparams.yaml in {folder}")
    ckpt_dir = checkpoint or str(find_model_checkpoint(
        folder, max_key=max_key, modules=MODULE_NAMES
    ).path)
    with open(yaml_path, encoding="utf-8") as f:
        text = f.read()
    # Building the modules draws random initial weights; keep the caller's
    # RNG stream as it was (the weights are overwritten anyway).
    with torch.random.fork_rng(devices=[]):
        seed = _seed_of(text)
        if seed is not None:
            # As the recipe seeded before building: random inits match.
            torch.manual_seed(seed)
        hparams = load_hyperpyyaml(text, _overrides_for(text, folder))

    if "compute_features" not in hparams:
        # Bad input, not a bug: the command line reports it in one line.
        raise UserError(
            f"{yaml_path} defines no compute_features: not a model of "
            "this project"
        )
    modules = hparams.get("modules") or {}
    found = {}
    for name in MODULE_NAMES:
        module = modules.get(name, hparams.get(name))
        if name == "relevance" and modules and name not in modules:
            module = None
        found[name] = module
    initial = None
    if found["compute_features"] is not None:
        initial = copy.deepcopy(found["compute_features"]).eval()
    for name, module in found.items():
        if module is None:
            continue
        path = os.path.join(ckpt_dir, f"{name}.ckpt")
        if os.path.isfile(path):
            state = load_checkpoint_file(path)
            module.load_state_dict(state)
        elif module.state_dict():
            raise FileNotFoundError(f"Missing {name}.ckpt in {ckpt_dir}")
        module.to(device).eval()
    other = _load_other_modules(modules, ckpt_dir, device)
    pipeline = pipeline_of(hparams, found).eval()

    sample_rate = hparams.get("sample_rate")
    if sample_rate is None:
        sample_rate = getattr(found["compute_features"], "sample_rate", None)
    labels = hparams.get("labels")
    return TrainedModel(
        compute_features=found["compute_features"],
        relevance=found["relevance"],
        classifier=found["classifier"],
        labels=list(labels) if labels is not None else None,
        sample_rate=int(sample_rate) if sample_rate is not None else None,
        name=str(hparams.get("system_name") or os.path.basename(folder)),
        folder=folder,
        checkpoint_dir=str(ckpt_dir),
        hparams=hparams,
        initial_compute_features=initial,
        other_modules=other,
        pipeline=pipeline,
    )


def _load_other_modules(modules, ckpt_dir, device):
    """Load the modules outside :data:`MODULE_NAMES` (embedding models).

    Their files are read with SpeechBrain's checkpoint hook for the
    module's class, as the recipe's checkpointer wrote them
    (``InputNormalization`` keeps its statistics in its own format).
    """
    from speechbrain.utils.checkpoints import (
        DEFAULT_LOAD_HOOKS,
        get_default_hook,
    )

    other = {}
    for name, module in modules.items():
        if name in MODULE_NAMES or not isinstance(module, torch.nn.Module):
            continue
        path = os.path.join(ckpt_dir, f"{name}.ckpt")
        if os.path.isfile(path):
            get_default_hook(module, DEFAULT_LOAD_HOOKS)(module, path, False)
        elif any(True for _ in module.parameters()):
            raise FileNotFoundError(f"Missing {name}.ckpt in {ckpt_dir}")
        other[name] = module.to(device).eval()
    return other


def _seed_of(yaml_text):
    """Return the integer ``seed:`` of a yaml text, or None."""
    for key, value in _TOP_LEVEL_KEY.findall(yaml_text):
        if key == "seed":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


__all__ = [
    "MODULE_NAMES",
    "TrainedModel",
    "load_trained",
]
