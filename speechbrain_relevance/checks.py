"""Checks of a recipe's settings, shared by every script that trains.

Every recipe's ``train.py`` loads its yaml with
:func:`speechbrain_relevance.cli.load_hparams`, which runs these checks
on the yaml's plain values (after the overrides, before any object is
built), and the cross-validation drivers run the same load before their
first fold. So a value that cannot work stops the run in one line naming
the key, instead of a traceback from deep in torch or, worse, a run that
quietly does something else:

* :data:`NUMERIC_KEYS`, one table of the numeric keys any recipe may
  have (learning rates, epochs, batch sizes, probabilities, ...), each
  with its type and range (:func:`check_numbers`);
* the class names against the number of classes (:func:`check_labels`);
* the run options SpeechBrain takes on the command line
  (:func:`check_run_opts`: ``--device``, ``--ckpt_interval_steps``...);
* top-level keys that nothing reads, e.g. a misspelt
  ``numbr_of_epochs:`` beside ``number_of_epochs:``, are warned about
  (:func:`unread_keys`).

Authors
 * speechbrain-relevance developers
"""

import io
import logging
import math
import re
from typing import NamedTuple, Optional

from speechbrain_relevance.errors import ConfigError

__all__ = [
    "NUMERIC_KEYS",
    "READ_BY_CODE",
    "Rule",
    "check_labels",
    "check_numbers",
    "check_run_opts",
    "check_settings",
    "plain_settings",
    "unread_keys",
]

logger = logging.getLogger(__name__)


class Rule(NamedTuple):
    """The type and range a numeric key must have.

    Arguments
    ---------
    integer : bool
        A whole number (a Python ``int``), else any finite real number.
    low : float, optional
        Lower bound (None: none).
    high : float, optional
        Upper bound (None: none).
    low_open : bool
        The lower bound itself is refused (``> low``).
    high_open : bool
        The upper bound itself is refused (``< high``).
    none : bool
        ``null`` is allowed (the key's "off" or "default").
    note : str
        What the key is, for the message.

    Example
    -------
    >>> Rule(False, 0, low_open=True).describe()
    'a number > 0'
    >>> Rule(True, 1, none=True).describe()
    'an integer >= 1 (or null)'
    """

    integer: bool
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    none: bool = False
    note: str = ""

    def describe(self):
        """Say what the rule allows, e.g. ``'a number in [0, 1)'``."""
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            text = f"{kind} in {left}{self.low:g}, {self.high:g}{right}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        elif self.high is not None:
            text = f"{kind} {'<' if self.high_open else '<='} {self.high:g}"
        else:
            text = kind
        return text + (" (or null)" if self.none else "")

    def accepts(self, value):
        """Whether ``value`` is allowed."""
        if value is None:
            return self.none
        if isinstance(value, bool):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.low is not None and (
            value < self.low or (self.low_open and value == self.low)
        ):
            return False
        if self.high is not None and (
            value > self.high or (self.high_open and value == self.high)
        ):
            return False
        return True


_FRACTION = {"low": 0, "high": 1, "high_open": True}

#: Every numeric key a recipe's yaml may have, with what it must be. Keys
#: a yaml does not have are not checked. SpeechBrain's run options that a
#: yaml may also set (``ckpt_interval_steps``, ...) are here too.
NUMERIC_KEYS = {
    "number_of_epochs": Rule(
        True, 0, note="0 only evaluates a finished run's checkpoint"
    ),
    "lr": Rule(False, 0, low_open=True, note="the learning rate"),
    "frontend_lr": Rule(
        False, 0, low_open=True, none=True,
        note="the front-end's learning rate; null: lr",
    ),
    "lr_final": Rule(False, 0),
    "lr_min": Rule(False, 0),
    "weight_decay": Rule(False, 0, note="0 turns it off"),
    "warmup_epochs": Rule(False, 0),
    "lr_hold": Rule(True, 0, note="epochs; 0 turns it off"),
    "lr_hold_scale": Rule(False, 0, 1),
    "label_smoothing": Rule(False, **_FRACTION, note="0 turns it off"),
    "mixup_alpha": Rule(False, 0, note="0 turns mixup off"),
    "dropout": Rule(False, **_FRACTION),
    "lstm_dropout": Rule(False, **_FRACTION),
    "crop_frames": Rule(True, 1, none=True, note="frames per training crop"),
    "patch_frames": Rule(True, 1, none=True, note="frames per patch"),
    "patch_hop": Rule(True, 1, none=True),
    "freq_mask_max": Rule(True, 0, note="0 turns the mask off"),
    "time_mask_max": Rule(True, 0, note="0 turns the mask off"),
    "num_workers": Rule(True, 0, none=True, note="0 loads in the process"),
    "batch_size": Rule(True, 1),
    "max_batch_length": Rule(
        False, 0, low_open=True, note="seconds of audio per batch"
    ),
    "average_checkpoints": Rule(True, 1),
    "valid_interval": Rule(True, 1),
    "ckpt_num_to_keep": Rule(True, 1),
    "cache_audio_mb": Rule(False, 0, none=True),
    "ddp_timeout_s": Rule(
        False, 0, low_open=True,
        note="seconds a process waits for the others",
    ),
    "seed": Rule(True),
    "sample_rate": Rule(True, 1),
    "n_classes": Rule(True, 1),
    "augment_copies": Rule(True, 0),
    # SpeechBrain's run options, when a yaml sets them.
    "ckpt_interval_steps": Rule(True, 0, note="0 turns them off"),
    "ckpt_interval_minutes": Rule(False, 0, note="0 turns them off"),
    "grad_accumulation_factor": Rule(True, 1),
    "max_grad_norm": Rule(False, 0),
    "nonfinite_patience": Rule(True, 0),
    "debug_batches": Rule(True, 1),
    "debug_epochs": Rule(True, 1),
    "optimizer_step_limit": Rule(True, 1, none=True),
}

#: Top-level keys the project's code (the recipes' scripts, the Brain,
#: the exporter, the analyses) reads from a recipe's hyperparameters,
#: besides SpeechBrain's run options (read by ``Brain`` from the yaml).
#: A key neither read here nor referenced in its yaml is reported by
#: :func:`unread_keys`.
READ_BY_CODE = frozenset({
    # every recipe (train.py, RelevanceBrain, fit_and_test, export)
    "abbreviations", "average_checkpoints", "checkpointer",
    "ckpt_num_to_keep", "compute_features", "data_folder",
    "ddp_timeout_s", "dynamic_batching", "epoch_counter", "feature_norm",
    "fold_folder", "freq_mask_max", "frontend_lr", "label_smoothing",
    "labels", "lr_scheduler", "manifest_folder", "mixup_alpha",
    "modules", "opt_class", "output_folder", "patch_frames", "pipeline",
    "pretrained_filterbank", "recompute_batchnorm", "relevance",
    "sample_rate", "save_folder", "seed", "sync_batchnorm",
    "system_name", "test_fold", "time_mask_max", "train_dataloader_opts",
    "train_logger", "valid_dataloader_opts", "valid_interval",
    "wav_augment", "classifier",
    # the model card's data set (export.card.declared_dataset)
    "dataset_card",
    # DCASE2020
    "aligned_specaug", "audio_augmentation", "augment_copies",
    "augment_folder", "augment_methods", "check_audio", "crop_frames",
    "skip_bad_files", "specaug_freq_positions", "valid_locations_fraction",
    # UrbanSound8k
    "group_by", "patch_aggregation", "patch_hop", "train_folds",
    "valid_folds",
    # FSDD
    "audio_check_cache", "cache_audio_mb", "split", "valid_speakers",
    # the ECAPA swap (recipes/other_recipes)
    "augment", "compute_cost", "dataloader_options", "error_stats",
    "label_encoder", "label_encoder_file", "lr_annealing",
    "test_annotation", "train_annotation", "valid_annotation",
})


class Tagged:
    """A yaml value built by a tag (``!new:``, ``!ref``...): not checked.

    Arguments
    ---------
    tag : str
        The tag.
    """

    def __init__(self, tag):
        self.tag = tag

    def __repr__(self):
        return f"Tagged({self.tag!r})"


def _plain_yaml():
    """Return a safe YAML 1.2 reader (as hyperpyyaml's) of tags as Tagged."""
    import ruamel.yaml
    from ruamel.yaml.constructor import SafeConstructor

    class PlainConstructor(SafeConstructor):
        """Safe constructor reading every tagged value as Tagged."""

    PlainConstructor.add_multi_constructor(
        "!", lambda loader, suffix, node: Tagged("!" + suffix)
    )
    reader = ruamel.yaml.YAML(typ="safe", pure=True)
    reader.Constructor = PlainConstructor
    return reader


def plain_settings(text, overrides=None):
    r"""Return a yaml's top-level values after overrides, building nothing.

    References (``!ref <key>``) are resolved and the overrides applied as
    ``hyperpyyaml`` does; a value built by a tag (an object, a
    ``!PLACEHOLDER``) is a :class:`Tagged`.

    Arguments
    ---------
    text : str
        The yaml text.
    overrides : str or dict, optional
        Overrides, as ``speechbrain.parse_arguments`` returns them.

    Returns
    -------
    dict
        Top-level key to value.

    Raises
    ------
    KeyError
        ``hyperpyyaml``'s, for an override of a key the yaml lacks.

    Example
    -------
    >>> plain_settings("lr: 0.1\nx: !ref <lr>\n", "lr: 0.5")
    {'lr': 0.5, 'x': 0.5}
    """
    from hyperpyyaml import resolve_references

    resolved = resolve_references(
        io.StringIO(text), overrides=overrides or "",
        overrides_must_match=True,
    )
    settings = _plain_yaml().load(resolved.getvalue())
    return settings if isinstance(settings, dict) else {}


def check_numbers(settings, rules=None):
    """Refuse a numeric key whose value is of the wrong type or range.

    Arguments
    ---------
    settings : dict
        Top-level values (:func:`plain_settings`).
    rules : dict, optional
        Key to :class:`Rule` (default :data:`NUMERIC_KEYS`).

    Raises
    ------
    ConfigError
        Naming the first key that breaks its rule, its value, and what it
        must be.

    Example
    -------
    >>> check_numbers({"lr": 0.001, "number_of_epochs": 3})
    >>> check_numbers({"number_of_epochs": 1.5})
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: number_of_epochs=1.5 must be an \
integer >= 0 (0 only evaluates a finished run's checkpoint)
    """
    rules = NUMERIC_KEYS if rules is None else rules
    for key, rule in rules.items():
        if key not in settings:
            continue
        value = settings[key]
        if isinstance(value, Tagged) or rule.accepts(value):
            continue
        note = f" ({rule.note})" if rule.note else ""
        raise ConfigError(f"{key}={value!r} must be {rule.describe()}{note}")


def check_labels(settings):
    """Refuse class names that are not one distinct name per class.

    Arguments
    ---------
    settings : dict
        Top-level values; ``labels`` is checked against ``n_classes``
        where the yaml has both.

    Raises
    ------
    ConfigError
        Naming ``labels``.

    Example
    -------
    >>> check_labels({"labels": ["a", "b"], "n_classes": 2})
    >>> check_labels({"labels": ["a", "b", "c"], "n_classes": 10})
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: labels has 3 names for \
n_classes=10 classes: give one name per class, in index order
    """
    if "labels" not in settings or isinstance(settings["labels"], Tagged):
        return
    labels = settings["labels"]
    if not isinstance(labels, list) or not labels:
        raise ConfigError(
            f"labels must be a list of class names, got {labels!r}"
        )
    names = [str(label) for label in labels]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"labels names {', '.join(repeated)} more than once: each class "
            "needs its own name"
        )
    n_classes = settings.get("n_classes")
    if isinstance(n_classes, int) and not isinstance(n_classes, bool) and (
        n_classes != len(labels)
    ):
        raise ConfigError(
            f"labels has {len(labels)} names for n_classes={n_classes} "
            "classes: give one name per class, in index order"
        )


def check_settings(settings):
    """Run :func:`check_numbers` and :func:`check_labels`.

    Arguments
    ---------
    settings : dict
        Top-level values (:func:`plain_settings`).

    Example
    -------
    >>> check_settings({"lr": -0.001})
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: lr=-0.001 must be a number > 0 \
(the learning rate)
    """
    check_numbers(settings)
    check_labels(settings)


def _run_option_names():
    """SpeechBrain's run options (which ``Brain`` also reads from a yaml)."""
    try:
        from speechbrain.utils.run_opts import RunOptions
    except ImportError:  # pragma: no cover (older SpeechBrain)
        return frozenset()
    return frozenset(RunOptions().as_dict())


def unread_keys(text):
    r"""List a yaml's top-level keys that nothing reads.

    A key is read if the yaml refers to it (``<key>``), if it is executed
    while loading (``__name``), if it is one of :data:`READ_BY_CODE`, or
    if it is a SpeechBrain run option.

    Arguments
    ---------
    text : str
        The yaml text.

    Returns
    -------
    list of str
        The unread keys, in the yaml's order.

    Example
    -------
    >>> unread_keys("number_of_epochs: 12\nnumbr_of_epochs: 1\n"
    ...             "epoch_counter: !ref <number_of_epochs>\n")
    ['numbr_of_epochs']
    """
    keys = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", text, flags=re.M)
    referred = set(re.findall(r"<([A-Za-z_][A-Za-z0-9_]*)", text))
    known = READ_BY_CODE | _run_option_names()
    return [
        key
        for key in dict.fromkeys(keys)
        if not key.startswith("__") and key not in referred
        and key not in known
    ]


def warn_unread_keys(hparams_file, text):
    """Log a warning for every top-level key that nothing reads.

    Arguments
    ---------
    hparams_file : str
        The yaml file, for the message.
    text : str
        Its text.

    Returns
    -------
    list of str
        The keys warned about.
    """
    import difflib

    unread = unread_keys(text)
    keys = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", text, flags=re.M)
    for key in unread:
        close = difflib.get_close_matches(
            key, [k for k in keys if k != key], n=1
        )
        hint = f" (did you mean {close[0]}?)" if close else ""
        logger.warning(
            "%s: key %s is not read by the recipe or any object of the "
            "yaml: it has no effect%s",
            hparams_file, key, hint,
        )
    return unread


def check_run_opts(run_opts):
    """Refuse SpeechBrain run options that cannot work or would be ignored.

    ``--device`` must name a device this machine has (``cuda`` without a
    GPU fails deep in torch); ``--ckpt_interval_steps`` and
    ``--ckpt_interval_minutes`` below 0 would mean "off" without a word;
    the other numeric options follow :data:`NUMERIC_KEYS`.

    Arguments
    ---------
    run_opts : mapping
        SpeechBrain's run options (``speechbrain.parse_arguments``' second
        value); only the options given on the command line are checked
        (``overridden_args``, where the options say which).

    Raises
    ------
    ConfigError
        Naming the option.

    Example
    -------
    >>> check_run_opts({"device": "cpu", "ckpt_interval_steps": 0})
    >>> check_run_opts({"ckpt_interval_steps": -1})
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: --ckpt_interval_steps=-1 must \
be an integer >= 0 (0 turns them off)
    """
    given = getattr(run_opts, "overridden_args", None)
    names = [
        "device", *[k for k in NUMERIC_KEYS if _has(run_opts, k)],
    ]
    for name in names:
        if given is not None and name not in given:
            continue
        if not _has(run_opts, name):
            continue
        value = run_opts[name]
        if name == "device":
            check_device(value)
            continue
        rule = NUMERIC_KEYS[name]
        if not rule.accepts(value):
            note = f" ({rule.note})" if rule.note else ""
            raise ConfigError(
                f"--{name}={value!r} must be {rule.describe()}{note}"
            )


def _has(run_opts, name):
    """Whether the run options (a dict or SpeechBrain's) hold ``name``."""
    try:
        return name in run_opts
    except TypeError:
        return hasattr(run_opts, name)


def check_device(device, key="--device"):
    """Refuse a device torch cannot use here.

    Arguments
    ---------
    device : str or None
        E.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"`` (None: the default).
    key : str
        How the option is named in the message.

    Raises
    ------
    ConfigError
        For a device that is not one, or a GPU this machine lacks.

    Example
    -------
    >>> check_device("cpu")
    >>> check_device("gpu")
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: --device=gpu is not a device \
(e.g. cpu, cuda, cuda:0)
    """
    import torch

    if device is None:
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(
            f"{key}={device} is not a device (e.g. cpu, cuda, cuda:0)"
        ) from None
    if parsed.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise ConfigError(
            f"{key}={device}: no CUDA GPU is available here "
            "(torch.cuda.is_available() is False); use --device=cpu"
        )
    count = torch.cuda.device_count()
    if parsed.index is not None and parsed.index >= count:
        raise ConfigError(
            f"{key}={device}: this machine has {count} GPU(s), "
            f"cuda:0 to cuda:{count - 1}"
        )
