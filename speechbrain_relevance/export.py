r"""Turn a finished recipe run into a shareable model folder.

A run folder of the DCASE2020 or UrbanSound8k recipe (for UrbanSound8k,
one fold's folder) holds the resolved ``hyperparams.yaml``, checkpoints
in ``save/CKPT+*`` and ``test_results.json``. :func:`export_model` picks
the best checkpoint (by validation accuracy unless told otherwise) and
writes a HuggingFace-style model folder::

    hyperparams.yaml      inference only: front-end, relevance (if any),
                          classifier, labels, sample rate, audio policy,
                          classifier_input, pretrainer (no training keys,
                          no data paths)
    compute_features.ckpt ... one state dict per module
    label_encoder.txt     CategoricalEncoder format
    README.md             model card: training command, data set, test
                          metrics, security note

that :class:`speechbrain_relevance.inference.RelevanceClassifier` loads
from any directory, or from the hub once the folder is uploaded::

    from speechbrain_relevance.inference import RelevanceClassifier
    clf = RelevanceClassifier.from_hparams(source="<hub id or folder>")

Command line::

    python -m speechbrain_relevance.export <run_folder> <model_folder> \
        [--max-key acc | --min-key KEY] [--classifier-input deltas]

To share the model, upload the folder's files to a HuggingFace model
repository (e.g. ``huggingface_hub.HfApi().upload_folder(folder_path=
<model_folder>, repo_id="<user>/<name>")``); others then load it with
``RelevanceClassifier.from_hparams(source="<user>/<name>")``, which fetches
every file from that repository (nothing in ``hyperparams.yaml`` points
to a local path).

The exported ``hyperparams.yaml`` names Python classes that are run when
it is loaded: only load model folders from sources you trust.

Authors
 * speechbrain-relevance developers
"""

import argparse
import datetime
import glob
import json
import logging
import math
import os
import re
import shlex
import shutil
import sys

import torch
from hyperpyyaml import resolve_references
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_relevance.inference import (
    CLASSIFIER_INPUTS,
    HPARAMS_FILE,
    LABEL_ENCODER_FILE,
)

logger = logging.getLogger(__name__)

#: Modules the inference interface knows how to use.
KNOWN_MODULES = ("compute_features", "relevance", "classifier")
REQUIRED_MODULES = ("compute_features", "classifier")

#: Classifier class name -> how it reads the representation.
CLASSIFIER_INPUT_BY_CLASS = {
    "FCN": "deltas",
    "CNNLSTM": "sequence",
    "CompactCNN": "sequence",
}

#: Shortest clip the exported model pads to (seconds), when the run does
#: not fix the clip length. The FCN needs 16 front-end frames (8 after the
#: valid-mode deltas), about 0.35 s at 44.1 kHz with hops of 1024 samples.
DEFAULT_MIN_DURATION = 1.0

#: Run hyperparameters copied into the inference file when present.
CARRIED_KEYS = ("clip_duration", "patch_frames", "patch_hop",
                "patch_aggregation")


class Tagged:
    """A YAML value with a tag, e.g. ``!new:pkg.Class`` with its arguments.

    Arguments
    ---------
    tag : str
        The tag, with its ``!``.
    value : object
        Plain value: dict, list, scalar or None.
    """

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return (
            isinstance(other, Tagged)
            and self.tag == other.tag
            and self.value == other.value
        )

    def __repr__(self):
        return f"Tagged({self.tag!r}, {self.value!r})"


def to_plain(node):
    r"""Convert a round-trip ruamel node to plain Python values.

    Tagged nodes become :class:`Tagged`.

    Arguments
    ---------
    node : object
        A value loaded by ``ruamel.yaml.YAML()`` (round-trip mode).

    Returns
    -------
    object
        dict, list, str, int, float, bool, None or :class:`Tagged`.

    Example
    -------
    >>> doc = YAML().load("a: !new:torch.nn.Linear {in_features: 2}\nb: 1.5")
    >>> to_plain(doc)
    {'a': Tagged('!new:torch.nn.Linear', {'in_features': 2}), 'b': 1.5}
    """
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, TaggedScalar):
        return Tagged(tag, node.value)
    if isinstance(node, CommentedMap):
        value = {str(k): to_plain(v) for k, v in node.items()}
    elif isinstance(node, (CommentedSeq, list, tuple)):
        value = [to_plain(v) for v in node]
    elif isinstance(node, bool) or node is None:
        return node
    elif isinstance(node, int):
        return int(node)
    elif isinstance(node, float):
        return float(node)
    else:
        return str(node)
    if tag and tag not in ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
        return Tagged(tag, value)
    return value


_PLAIN_STRING = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/+]*$")
_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}


def yaml_scalar(value):
    """Format a scalar for a YAML file (SpeechBrain style: True/False).

    Arguments
    ---------
    value : str, int, float, bool or None
        The value.

    Returns
    -------
    str
        Its YAML text.

    Example
    -------
    >>> [yaml_scalar(v) for v in (True, None, 1e-05, "mel", "a b", "null")]
    ['True', 'null', '1.0e-05', 'mel', '"a b"', '"null"']
    """
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        # YAML 1.1 readers need a dot in exponent notation.
        if "e" in text and "." not in text:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    text = str(value)
    if _PLAIN_STRING.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


def yaml_lines(key, value, indent=0):
    r"""Render ``key: value`` as block-style YAML lines.

    Arguments
    ---------
    key : str
        Mapping key.
    value : object
        Plain value or :class:`Tagged`.
    indent : int
        Indentation of the key, in spaces.

    Returns
    -------
    list of str
        The lines.

    Example
    -------
    >>> print("\n".join(yaml_lines(
    ...     "model", Tagged("!new:torch.nn.Linear", {"in_features": 2}))))
    model: !new:torch.nn.Linear
        in_features: 2
    """
    pad = " " * indent
    tag = ""
    if isinstance(value, Tagged):
        tag, value = value.tag, value.value
    head = f"{pad}{key}:" + (f" {tag}" if tag else "")
    if isinstance(value, dict):
        if not value:
            return [head if tag else f"{head} {{}}"]
        lines = [head]
        for k, v in value.items():
            lines += yaml_lines(k, v, indent + 4)
        return lines
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list, Tagged)) for v in value):
            return _flow_list(head, [yaml_scalar(v) for v in value], pad)
        lines = [head]
        for v in value:
            sub = yaml_lines("x", v, indent + 4)
            # Turn "    x: value" into "    - value".
            first = sub[0].replace(" x:", " -", 1)
            lines += [first.rstrip()] + sub[1:]
        return lines
    if tag and value in ("", None):
        return [head]
    return [f"{head} {yaml_scalar(value)}"]


def _flow_list(head, items, pad, width=79):
    """Format a ``[a, b, ...]`` list, wrapped to ``width`` columns."""
    text = f"{head} [{', '.join(items)}]"
    if len(text) <= width:
        return [text]
    lines, line = [], f"{head} ["
    cont = pad + " " * 4
    for i, item in enumerate(items):
        piece = item + ("]" if i == len(items) - 1 else ",")
        if len(line) + 1 + len(piece) > width and line.strip() not in (
            "",
            f"{head.strip()} [",
        ):
            lines.append(line)
            line = cont + piece
        else:
            sep = "" if line.endswith("[") else " "
            line += sep + piece
    lines.append(line)
    return lines


def load_run_yaml(path):
    """Read a resolved run ``hyperparams.yaml`` without instantiating it.

    Arguments
    ---------
    path : str
        The file.

    Returns
    -------
    dict
        Top-level keys to plain values (:class:`Tagged` for objects),
        aliases resolved to the objects they point to.
    """
    with open(path, encoding="utf-8") as fin:
        return to_plain(YAML().load(fin))


def find_best_checkpoint(run_folder, max_key="acc", min_key=None):
    """Find the run's best checkpoint.

    Arguments
    ---------
    run_folder : str
        The run's output folder (with ``save/``).
    max_key : str
        Meta key to maximise (ignored if ``min_key`` is given).
    min_key : str, optional
        Meta key to minimise instead.

    Returns
    -------
    speechbrain.utils.checkpoints.Checkpoint
        Its ``path`` and ``meta``.

    Example
    -------
    >>> find_best_checkpoint("/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: No checkpoint folder /nonexistent/save ...
    """
    save = os.path.join(run_folder, "save")
    if not os.path.isdir(save):
        raise FileNotFoundError(
            f"No checkpoint folder {save} (is {run_folder} a finished "
            "recipe run?)"
        )
    keys = {"min_key": min_key} if min_key else {"max_key": max_key}
    ckpt = Checkpointer(save).find_checkpoint(**keys)
    if ckpt is None:
        key = min_key or max_key
        raise FileNotFoundError(
            f"No checkpoint in {save} has {key!r} in its meta data"
        )
    return ckpt


def _class_name(node):
    """Return the class name of a ``!new:<module>.<Class>`` entry, or None."""
    tag = node.tag if isinstance(node, Tagged) else ""
    return tag.rsplit(".", 1)[-1] or None


def detect_classifier_input(classifier):
    """Tell how a classifier reads the representation from its class.

    Arguments
    ---------
    classifier : Tagged
        The run's ``classifier`` entry (``!new:<module>.<Class>``).

    Returns
    -------
    str
        ``"deltas"`` or ``"sequence"``.

    Example
    -------
    >>> detect_classifier_input(
    ...     Tagged("!new:speechbrain_relevance.models.FCN", {}))
    'deltas'
    """
    tag = classifier.tag if isinstance(classifier, Tagged) else ""
    name = _class_name(classifier)
    if name not in CLASSIFIER_INPUT_BY_CLASS:
        raise ValueError(
            f"Cannot tell how classifier {tag or classifier!r} reads the "
            "representation; give classifier_input (one of "
            f"{CLASSIFIER_INPUTS})"
        )
    return CLASSIFIER_INPUT_BY_CLASS[name]


def inference_hparams_text(run, modules, classifier_input, min_duration,
                           source_note):
    """Write the inference ``hyperparams.yaml`` of a model folder.

    Arguments
    ---------
    run : dict
        The run's hyperparameters (see :func:`load_run_yaml`).
    modules : dict
        Module name to its :class:`Tagged` definition.
    classifier_input : str
        ``"deltas"`` or ``"sequence"``.
    min_duration : float
        Shortest clip (seconds) before padding.
    source_note : str
        Where the model comes from (comment line).

    Returns
    -------
    str
        The YAML text.
    """
    name = run.get("system_name") or "speechbrain-relevance model"
    out = [
        "# " + "#" * 76,
        f"# Inference hyperparameters: {name}",
        f"# {source_note}",
        "# Load: RelevanceClassifier.from_hparams(source=<this folder or "
        "hub id>)",
        "#       (speechbrain_relevance.inference)",
        "# WARNING: loading this file runs the Python objects it names; only",
        "# load model folders from sources you trust.",
        "# " + "#" * 76,
        "",
    ]
    out += yaml_lines("sample_rate", run["sample_rate"])
    out += yaml_lines("labels", list(run["labels"]))
    out += [
        "",
        "# How the classifier reads the per-head representation: deltas",
        "# ([x, delta, delta-delta] per head, heads along the bands; FCN) or",
        "# sequence (heads along the bands, [batch, frames, bands]; CNN-LSTM)",
    ]
    out += yaml_lines("classifier_input", classifier_input)
    out += [
        "",
        "# Normalisation of the representation, as in training: minmax",
        "# (per example, to [0, 1]) or sentence (per example and band, zero",
        "# mean and unit variance)",
    ]
    out += yaml_lines("feature_norm", run.get("feature_norm") or "minmax")
    out += [
        "",
        "# Audio policy: clips are peak-normalised; with clip_duration set",
        "# (seconds) every clip is zero-padded or cropped to it, as in",
        "# training; otherwise clips shorter than min_duration are",
        "# zero-padded to it.",
    ]
    out += yaml_lines("clip_duration", run.get("clip_duration"))
    out += yaml_lines("min_duration", float(min_duration))
    if classifier_input == "sequence":
        out += [
            "",
            "# Patches (null: whole clips); patch posteriors are combined",
            "# per clip with patch_aggregation.",
        ]
        for key in ("patch_frames", "patch_hop"):
            out += yaml_lines(key, run.get(key))
        out += yaml_lines(
            "patch_aggregation", run.get("patch_aggregation", "mean_log_prob")
        )
    out.append("")
    for key, node in modules.items():
        out += yaml_lines(key, node)
        out.append("")
    out += [
        "label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder",
        "",
        "modules:",
    ]
    out += [f"    {key}: !ref <{key}>" for key in modules]
    out += [
        "",
        "# Every file is looked up next to this one, in the folder or hub",
        "# repository given to from_hparams (no paths here: a relative path",
        "# would be resolved against the current directory).",
        "pretrainer: !new:speechbrain_relevance.inference."
        "ModelFolderPretrainer",
        "    loadables:",
    ]
    out += [f"        {key}: !ref <{key}>" for key in modules]
    out += [
        "        label_encoder: !ref <label_encoder>",
        "    filenames:",
        f"        label_encoder: {LABEL_ENCODER_FILE}",
        "",
    ]
    return "\n".join(out)


def write_label_encoder(labels, path):
    """Write ``labels`` (in index order) as a CategoricalEncoder file.

    Arguments
    ---------
    labels : list of str
        Class names, index order.
    path : str
        Output file.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "label_encoder.txt")
    >>> write_label_encoder(["park", "bus"], path)
    >>> enc = CategoricalEncoder()
    >>> enc.load(path)
    >>> enc.decode_ndim([1, 0])
    ['bus', 'park']
    """
    encoder = CategoricalEncoder()
    for label in labels:
        encoder.add_label(label)
    encoder.expect_len(len(labels))
    encoder.save(path)


def _source_hparams_file(run_folder):
    """Return the hparams file a run was started with (from its header)."""
    path = os.path.join(run_folder, HPARAMS_FILE)
    with open(path, encoding="utf-8") as fin:
        head = [next(fin, "") for _ in range(3)]
    for i, line in enumerate(head[:-1]):
        if line.startswith("# Generated") and "from:" in line:
            return head[i + 1].lstrip("#").strip() or None
    return None


def recover_overrides(run, original_path):
    r"""Find the command-line overrides that turn a hparams file into a run.

    The original file is resolved with the overrides found so far, and the
    first top-level value (in file order) that differs from the run's is
    added as an override, until nothing differs. Keys derived from an
    overridden key (``save_folder`` from ``output_folder``) are thereby
    not reported separately.

    Arguments
    ---------
    run : dict
        The run's resolved hyperparameters (:func:`load_run_yaml`).
    original_path : str
        The hparams file the run was started from.

    Returns
    -------
    dict
        Override key to value, in file order.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "h.yaml")
    >>> with open(path, "w") as f:
    ...     _ = f.write("a: 1\nb: !ref <a>/x\nc: !PLACEHOLDER\n")
    >>> recover_overrides({"a": 2, "b": "2/x", "c": "d"}, path)
    {'a': 2, 'c': 'd'}
    """
    with open(original_path, encoding="utf-8") as fin:
        original = fin.read()
    raw = to_plain(YAML().load(original))
    order = list(raw)
    # Placeholders must be given (and other keys may refer to them).
    overrides = {
        key: run[key]
        for key, value in raw.items()
        if isinstance(value, Tagged) and value.tag == "!PLACEHOLDER"
        and key in run
    }
    for _ in range(len(run) + 1):
        resolved = to_plain(
            YAML().load(resolve_references(original, overrides))
        )
        changed = None
        for key, value in resolved.items():
            if key not in run or key in overrides:
                continue
            if isinstance(value, Tagged) and value.tag != "!PLACEHOLDER":
                continue  # objects: their arguments are top-level keys
            if value != run[key]:
                changed = key
                break
        if changed is None:
            break
        overrides[changed] = run[changed]
    return {key: overrides[key] for key in order if key in overrides}


def _override_text(key, value):
    """One ``--key=value`` command-line argument."""
    if isinstance(value, (list, dict)):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = yaml_scalar(value).strip('"')
    return shlex.quote(f"--{key}={text}")


def training_command(run_folder, run):
    """Reconstruct the command that trained a run, as far as possible.

    Arguments
    ---------
    run_folder : str
        The run's output folder.
    run : dict
        Its resolved hyperparameters.

    Returns
    -------
    str
        A shell command. Paths are shortened to placeholders
        (``/path/to/<name>``) and the output folder is left out; run
        options (device, distributed launch) are not recorded by
        SpeechBrain and cannot be shown.
    bool
        Whether the overrides were recovered from the original file (else
        the command uses the run's resolved copy).
    """
    original = _source_hparams_file(run_folder)
    if original and os.path.isfile(original):
        overrides = recover_overrides(run, original)
        hparams_arg, recovered = _display_path(original), True
    else:
        # The run's resolved copy reproduces the run by itself.
        overrides = {"data_folder": run.get("data_folder")}
        hparams_arg, recovered = HPARAMS_FILE, False
    # Without the original, the run folder's own copies of the script
    # and the resolved hyperparameters reproduce the run.
    script = "train.py"
    if recovered and os.path.basename(os.path.dirname(original)) == "hparams":
        script = os.path.join(
            os.path.dirname(os.path.dirname(_display_path(original))),
            "train.py",
        )
    args = []
    for key, value in overrides.items():
        if key == "output_folder":
            continue
        if isinstance(value, str) and os.path.isabs(value):
            name = _dataset_name(run) if key == "data_folder" else None
            value = "/path/to/" + (name or os.path.basename(value))
        args.append(_override_text(key, value))
    parts = ["python", script, hparams_arg] + args
    return " \\\n    ".join(_wrap_args(parts)), recovered


def _wrap_args(parts, width=72):
    """Group command-line parts into lines of at most ``width``."""
    lines, line = [], ""
    for part in parts:
        if line and len(line) + 1 + len(part) > width:
            lines.append(line)
            line = part
        else:
            line = f"{line} {part}" if line else part
    lines.append(line)
    return lines


def _display_path(path):
    """``recipes/...`` relative form of a path inside a project checkout."""
    parts = os.path.normpath(path).split(os.sep)
    if "recipes" in parts:
        return "/".join(parts[len(parts) - parts[::-1].index("recipes") - 1:])
    return path


def _prepared_data_folder(run):
    """Return the data folder the run's data preparation used."""
    manifests = run.get("manifest_folder")
    if isinstance(manifests, str):
        for path in glob.glob(os.path.join(manifests, "prepare_*.json")):
            try:
                with open(path, encoding="utf-8") as fin:
                    folder = json.load(fin).get("data_folder")
            except (OSError, ValueError):
                continue
            if folder:
                return folder
    return run.get("data_folder")


def _dataset_name(run):
    """Return the data set folder's name (e.g. ``UrbanSound8K``)."""
    folder = _prepared_data_folder(run)
    return os.path.basename(os.path.normpath(folder)) if folder else None


def describe_dataset(run):
    """Describe the training data of a run for the model card.

    Arguments
    ---------
    run : dict
        Resolved hyperparameters.

    Returns
    -------
    str
        Markdown paragraph.
    """
    folder = _prepared_data_folder(run)
    synthetic = bool(
        folder
        and os.path.isdir(folder)
        and any(n.startswith("synthetic") for n in os.listdir(folder))
    )
    if "valid_speakers" in run:
        if run.get("split") == "official":
            text = (
                "Free Spoken Digit Dataset (FSDD; 10 digits, 6 speakers, "
                "8 kHz, CC BY-SA 4.0), the dataset's official split: "
                "takes 0-4 of every speaker and digit tested, 5-9 for "
                "validation, 10-49 for training."
            )
        else:
            valid = run.get("valid_speakers") or "the next speaker"
            text = (
                "Free Spoken Digit Dataset (FSDD; 10 digits, 6 speakers, "
                "8 kHz, CC BY-SA 4.0), one fold of leave-one-speaker-out "
                f"cross-validation: tested on the unseen speaker "
                f"`{run.get('test_fold')}`, validated on {valid} "
                "(alphabetical, cyclic), trained on the other four. The "
                "metrics below are for this test speaker only."
            )
    elif "test_fold" in run:
        folds = [
            f"test fold {run['test_fold']}",
            f"validation folds {run.get('valid_folds') or 'default'}",
            f"training folds {run.get('train_folds') or 'default'}",
        ]
        text = (
            "UrbanSound8K (10 classes, official predefined folds), one "
            f"round of the 10-fold cross-validation: {', '.join(folds)} "
            "(default: validation is the fold before the test fold, "
            "training the other eight). The metrics below are for this "
            "test fold only, not the 10-fold mean."
        )
    elif "valid_locations_fraction" in run:
        text = (
            "DCASE2020 Task 1A development set (TAU Urban Acoustic Scenes "
            "2020 Mobile, 10 scenes), official fold 1: trained on "
            "fold1_train minus the held-out validation locations "
            f"({run['valid_locations_fraction']} of the locations), "
            "tested on fold1_evaluate."
        )
        if run.get("audio_augmentation"):
            text += (
                " Offline audio augmentation of the training split: "
                f"{', '.join(map(str, run.get('augment_methods', [])))}."
            )
    else:
        text = f"Data folder `{_dataset_name(run) or 'unknown'}`."
    if synthetic:
        text += (
            "\n\n**Trained on a synthetic stand-in** of the data set "
            "(generated by `speechbrain_relevance.data`), not on the real "
            "recordings: the metrics say nothing about real audio."
        )
    return text


def _metrics_markdown(results, patch_results=None, group_name="Group"):
    """Markdown tables of a ``test_results.json``."""
    lines = ["| Metric | Value |", "|---|---|"]
    lines.append(f"| Test examples (n) | {results.get('n')} |")
    for key, name in (
        ("accuracy", "Accuracy"),
        ("macro_accuracy", "Macro (class-average) accuracy"),
        ("log_loss", "Log loss"),
    ):
        if results.get(key) is not None:
            lines.append(f"| {name} | {results[key]:.4f} |")
    if patch_results and patch_results.get("accuracy") is not None:
        lines.append(
            f"| Patch-level accuracy | {patch_results['accuracy']:.4f} "
            f"(n = {patch_results.get('n')}) |"
        )
    class_acc = results.get("class_accuracy") or {}
    counts = results.get("class_counts") or {}
    if class_acc:
        lines += ["", "| Class | Accuracy | n |", "|---|---|---|"]
        for label, acc in class_acc.items():
            acc_text = "-" if acc is None else f"{acc:.4f}"
            lines.append(f"| {label} | {acc_text} | {counts.get(label, '')} |")
    groups = results.get("group_accuracy") or {}
    if groups:
        lines += ["", f"| {group_name} | Accuracy |", "|---|---|"]
        for group, acc in groups.items():
            if isinstance(acc, dict):
                acc = acc.get("accuracy")
            acc_text = "-" if acc is None else f"{acc:.4f}"
            lines.append(f"| {group} | {acc_text} |")
    return "\n".join(lines)


def model_card(run, run_folder, ckpt, key_text, modules, classifier_input,
               results, patch_results, min_duration):
    """Write the model card (``README.md``) of an exported model.

    Arguments
    ---------
    run : dict
        Resolved hyperparameters of the run.
    run_folder : str
        The run's output folder.
    ckpt : speechbrain.utils.checkpoints.Checkpoint
        The exported checkpoint.
    key_text : str
        How it was chosen (e.g. ``max acc``).
    modules : dict
        Exported module definitions.
    classifier_input : str
        ``deltas`` or ``sequence``.
    results : dict or None
        ``test_results.json``.
    patch_results : dict or None
        ``test_results_patches.json`` (patch-level), if any.
    min_duration : float
        Padding minimum of the exported model.

    Returns
    -------
    str
        Markdown.
    """
    name = run.get("system_name") or "speechbrain-relevance model"
    classifier_class = _class_name(modules.get("classifier"))
    if "valid_speakers" in run:
        task = "spoken digit recognition"
    elif classifier_input == "deltas":
        task = "acoustic scene classification"
    else:
        task = "urban sound classification"
    classifier_text = {
        "FCN": "an FCN",
        "CNNLSTM": "a CNN-LSTM",
        "CompactCNN": "a compact CNN",
    }.get(classifier_class, f"a {classifier_class or 'neural'}")
    command, recovered = training_command(run_folder, run)
    parts = [
        "---",
        "library_name: speechbrain",
        "tags:",
        "- audio-classification",
        "- speechbrain",
        "- relevance-weighting",
        "- learnable-frontend",
        "metrics:",
        "- accuracy",
        "---",
        "",
        f"# {name}: {task}",
        "",
        "A SpeechBrain model from `speechbrain_relevance`, the plug-in "
        "implementing multi-head relevance weighting: a learnable "
        "front-end on the raw waveform, "
        + (
            "a multi-head relevance network weighting its time-frequency "
            "bins, "
            if "relevance" in modules
            else "no relevance weighting (baseline), "
        )
        + f"and {classifier_text} classifier, trained jointly.",
        "",
        "| | |",
        "|---|---|",
    ]
    for key, node in modules.items():
        parts.append(f"| {key} | `{node.tag.split(':', 1)[-1]}` |")
    parts += [
        f"| Sample rate | {run['sample_rate']} Hz (other rates are "
        "resampled) |",
        f"| Classes | {', '.join(map(str, run['labels']))} |",
        "",
        "## Usage",
        "",
        "```python",
        "from speechbrain_relevance.inference import RelevanceClassifier",
        "",
        "clf = RelevanceClassifier.from_hparams(source=\"<hub id or local "
        "folder>\")",
        "out_prob, score, index, text_lab = clf.classify_file(\"clip.wav\")",
        "# Learned representation, relevance masks, weighted representation",
        "rep = clf.representation_file(\"clip.wav\")",
        "```",
        "",
        "The `speechbrain-relevance` package (`pip install -e .` in its "
        "repository) and SpeechBrain 1.1 are needed: the hyperparameters "
        "name their classes. Audio of any "
        "sample rate and channel count is resampled and downmixed; every "
        "clip is peak-normalised as in training; "
        + (
            f"every clip is zero-padded or cropped to {run['clip_duration']}"
            " s, as in training."
            if run.get("clip_duration")
            else f"clips shorter than {min_duration} s are zero-padded to "
            "it. Longer clips are used whole."
        ),
        "",
        "**Security:** `hyperparams.yaml` is executable: loading it "
        "instantiates the Python classes it names. Only load model folders "
        "from sources you trust. The checkpoints themselves are read with "
        "`torch.load(..., weights_only=True)`.",
        "",
        "## Training",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    if not recovered:
        parts += [
            "The original hyperparameter file was not found; the command "
            f"uses the run folder's copies of `train.py` and of the "
            f"resolved `{HPARAMS_FILE}`, which reproduce the run.",
            "",
        ]
    parts += [
        "Run options (device, precision, distributed launch) are not "
        "recorded by SpeechBrain and are not shown.",
        "",
        "### Data",
        "",
        describe_dataset(run),
        "",
        "## Results",
        "",
    ]
    meta = ", ".join(
        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
        for k, v in ckpt.meta.items()
        if k not in ("unixtime", "end-of-epoch")
    )
    parts.append(
        f"Checkpoint `{os.path.basename(ckpt.path)}`, chosen by {key_text} "
        f"on the validation data ({meta})."
    )
    parts.append("")
    if results is None:
        parts.append("No `test_results.json` was found in the run folder.")
    else:
        if key_text != "max acc":
            parts += [
                "Note: the recipe tested the checkpoint with the best "
                "validation accuracy; the metrics below may belong to "
                "another checkpoint than the exported one.",
                "",
            ]
        parts += [
            "Measured on the test split by the recipe "
            "(`test_results.json`):",
            "",
            _metrics_markdown(
                results,
                patch_results,
                # The recipes' groups: DCASE recording devices, FSDD
                # speakers, or the UrbanSound8k field named by group_by.
                "Speaker"
                if "valid_speakers" in run
                else str(run.get("group_by", "device")).capitalize(),
            ),
        ]
    parts += [
        "",
        "## Files",
        "",
        f"- `{HPARAMS_FILE}`: inference hyperparameters (executable, see "
        "above)",
    ]
    parts += [f"- `{key}.ckpt`: state dict of `{key}`" for key in modules]
    parts += [
        f"- `{LABEL_ENCODER_FILE}`: class names (SpeechBrain "
        "CategoricalEncoder format)",
        "",
        f"Exported on {datetime.date.today().isoformat()} by "
        "`python -m speechbrain_relevance.export`.",
        "",
    ]
    return "\n".join(parts)


def _read_json(path):
    """Return a JSON file's content, or None if it is absent."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fin:
        return json.load(fin)


def _check_run_folder(run_folder):
    """Fail clearly if ``run_folder`` is not one recipe run."""
    if os.path.isfile(os.path.join(run_folder, HPARAMS_FILE)):
        return
    folds = sorted(
        os.path.basename(os.path.dirname(p))
        for p in glob.glob(os.path.join(run_folder, "*", HPARAMS_FILE))
        if os.path.isdir(os.path.join(os.path.dirname(p), "save"))
    )
    hint = (
        f" It holds the runs {', '.join(folds)}: export one of them "
        f"(e.g. {os.path.join(run_folder, folds[0])})."
        if folds
        else ""
    )
    raise FileNotFoundError(
        f"{run_folder} is not a recipe run folder (no {HPARAMS_FILE}).{hint}"
    )


def export_model(
    run_folder,
    model_folder,
    max_key="acc",
    min_key=None,
    classifier_input=None,
    min_duration=DEFAULT_MIN_DURATION,
    overwrite=False,
    verify=True,
):
    """Export a finished recipe run as a model folder.

    Arguments
    ---------
    run_folder : str
        The run's output folder (UrbanSound8k: one fold's folder).
    model_folder : str
        Folder to write; must not exist or be empty (unless
        ``overwrite``).
    max_key : str
        Checkpoint meta key to maximise.
    min_key : str, optional
        Checkpoint meta key to minimise instead.
    classifier_input : str, optional
        ``deltas`` or ``sequence``; detected from the classifier's class
        if None.
    min_duration : float
        Clips shorter than this (seconds) are zero-padded at inference,
        unless the run fixes the clip length (``clip_duration``).
    overwrite : bool
        Replace the files of an existing model folder.
    verify : bool
        Load the exported folder and classify one second of noise.

    Returns
    -------
    str
        The model folder (absolute).
    """
    run_folder = os.path.abspath(run_folder)
    model_folder = os.path.abspath(model_folder)
    _check_run_folder(run_folder)
    if os.path.isdir(model_folder) and os.listdir(model_folder):
        if not overwrite:
            raise FileExistsError(
                f"{model_folder} exists and is not empty (use overwrite)"
            )
    run = load_run_yaml(os.path.join(run_folder, HPARAMS_FILE))
    for key in ("sample_rate", "labels", "modules"):
        if key not in run:
            raise ValueError(f"The run's {HPARAMS_FILE} has no {key!r}")

    modules = {}
    for key, node in run["modules"].items():
        if key not in KNOWN_MODULES:
            raise ValueError(
                f"Module {key!r} of the run is unknown to the inference "
                f"interface (it uses {KNOWN_MODULES})"
            )
        if not isinstance(node, Tagged):
            raise ValueError(f"Module {key!r} is not an object definition")
        modules[key] = node
    missing = [m for m in REQUIRED_MODULES if m not in modules]
    if missing:
        raise ValueError(f"The run has no {missing} module(s)")
    # Fixed order: front-end, relevance, classifier.
    modules = {k: modules[k] for k in KNOWN_MODULES if k in modules}

    if classifier_input is None:
        classifier_input = detect_classifier_input(modules["classifier"])
    if classifier_input not in CLASSIFIER_INPUTS:
        raise ValueError(
            f"classifier_input must be one of {CLASSIFIER_INPUTS}, got "
            f"{classifier_input!r}"
        )

    ckpt = find_best_checkpoint(run_folder, max_key=max_key, min_key=min_key)
    sources = {}
    for key in modules:
        path = os.path.join(ckpt.path, f"{key}.ckpt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Checkpoint {ckpt.path} lacks {key}.ckpt")
        # Fail here, not on the user's side, if a file is not plain
        # tensors.
        torch.load(path, map_location="cpu", weights_only=True)
        sources[key] = path

    os.makedirs(model_folder, exist_ok=True)
    for key, path in sources.items():
        shutil.copyfile(path, os.path.join(model_folder, f"{key}.ckpt"))
    write_label_encoder(
        list(run["labels"]), os.path.join(model_folder, LABEL_ENCODER_FILE)
    )
    key_text = f"min {min_key}" if min_key else f"max {max_key}"
    source_note = (
        f"Exported from run {os.path.basename(run_folder)}, checkpoint "
        f"{os.path.basename(ckpt.path)} ({key_text})"
    )
    with open(
        os.path.join(model_folder, HPARAMS_FILE), "w", encoding="utf-8"
    ) as fout:
        fout.write(
            inference_hparams_text(
                run, modules, classifier_input, min_duration, source_note
            )
        )
    results = _read_json(os.path.join(run_folder, "test_results.json"))
    patch_results = _read_json(
        os.path.join(run_folder, "test_results_patches.json")
    )
    with open(
        os.path.join(model_folder, "README.md"), "w", encoding="utf-8"
    ) as fout:
        fout.write(
            model_card(
                run, run_folder, ckpt, key_text, modules, classifier_input,
                results, patch_results, min_duration,
            )
        )
    if verify:
        _verify(model_folder)
    logger.info("Exported %s to %s", ckpt.path, model_folder)
    return model_folder


def _verify(model_folder):
    """Load the exported folder and classify a second of noise."""
    from speechbrain_relevance.inference import RelevanceClassifier

    clf = RelevanceClassifier.from_hparams(
        source=model_folder, run_opts={"device": "cpu"}
    )
    gen = torch.Generator().manual_seed(0)
    wav = 0.1 * torch.randn(1, clf.sample_rate, generator=gen)
    out_prob = clf.classify_batch(wav)[0]
    if not torch.isfinite(out_prob).all():
        raise RuntimeError(f"{model_folder} gives non-finite outputs")


def main(argv=None):
    """Command line entry point.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_relevance.export",
        description="Export a finished recipe run as a model folder "
        "(hyperparams.yaml, checkpoints, label_encoder.txt, README.md).",
    )
    parser.add_argument("run_folder", help="the run's output folder "
                        "(UrbanSound8k: one fold's folder)")
    parser.add_argument("model_folder", help="folder to write")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--max-key", default="acc",
                       help="checkpoint meta key to maximise (default acc)")
    group.add_argument("--min-key", default=None,
                       help="checkpoint meta key to minimise instead")
    parser.add_argument("--classifier-input", choices=CLASSIFIER_INPUTS,
                        default=None, help="default: from the classifier "
                        "class (FCN: deltas, CNNLSTM: sequence)")
    parser.add_argument("--min-duration", type=float,
                        default=DEFAULT_MIN_DURATION,
                        help="pad shorter clips to this many seconds "
                        f"(default {DEFAULT_MIN_DURATION})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of an existing folder")
    parser.add_argument("--no-verify", action="store_true",
                        help="do not load the exported folder as a check")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        folder = export_model(
            args.run_folder,
            args.model_folder,
            max_key=args.max_key,
            min_key=args.min_key,
            classifier_input=args.classifier_input,
            min_duration=args.min_duration,
            overwrite=args.overwrite,
            verify=not args.no_verify,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
