r"""The model card (``README.md``) of an exported model folder.

The card is what a HuggingFace model repository shows: YAML front matter
(license, pipeline tag, library, tags), the install line, how to load the
model with ``from_hparams``, the command that trained it, its data, the
metrics the recipe measured on the test split, and how to cite it.

Nothing machine-specific is written: paths are shown relative to the
project's ``recipes/`` folder or by their last component, data folders as
``/path/to/<name>``.

What the model was trained and tested on is what its recipe declares in
a ``dataset_card`` block of its yaml (:func:`declared_dataset`); nothing
is guessed from the names of the run's keys or folders, and a run whose
recipe declares nothing gets a card that says so.

Authors
 * speechbrain-relevance developers
"""

import datetime
import glob
import json
import os
import shlex
import string

from hyperpyyaml import resolve_references

from speechbrain_relevance.errors import ExportError
from speechbrain_relevance.export.hparams import (
    Tagged,
    dump_yaml,
    load_yaml,
    to_plain,
)

__all__ = [
    "CITATION",
    "DATASET_CARD_KEYS",
    "declared_dataset",
    "describe_dataset",
    "model_card",
    "recover_overrides",
    "training_command",
]

#: How to cite: the paper the models implement, and SpeechBrain.
CITATION = """\
@inproceedings{dutta2021multihead,
  title     = {A Multi-Head Relevance Weighting Framework for Learning Raw
               Waveform Audio Representations},
  author    = {Dutta, Debottam and Agrawal, Purvi and Ganapathy, Sriram},
  booktitle = {IEEE Workshop on Applications of Signal Processing to Audio
               and Acoustics (WASPAA)},
  year      = {2021},
  eprint    = {2107.14793},
  archivePrefix = {arXiv}
}

@misc{speechbrainV1,
  title  = {Open-Source Conversational {AI} with {SpeechBrain} 1.0},
  author = {Ravanelli, Mirco and Parcollet, Titouan and Moumen, Adel and
            de Langen, Sylvain and Subakan, Cem and others},
  year   = {2024},
  eprint = {2407.00463},
  archivePrefix = {arXiv}
}"""

#: The keys a recipe's ``dataset_card`` block may have (see
#: :func:`declared_dataset`).
DATASET_CARD_KEYS = ("id", "name", "task", "group", "split", "description")

#: The card's data paragraph for a run whose recipe declares no data set.
UNDECLARED_DATASET = (
    "The recipe declared no data set, so this card cannot say what the "
    "model was trained and tested on{folder}. A recipe declares its data "
    "in a `dataset_card:` block of its yaml, as the project's recipes do: "
    "`id` (the Hugging Face data set id), `name`, `task` and "
    "`description` (`{{key}}` in it is the run's value of a "
    "hyperparameter). Add the block to the recipe's yaml, or to the run's "
    "`hyperparams.yaml`, and export again."
)


def _read_json(path):
    """Return a JSON file's content, or None if it is absent."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fin:
        return json.load(fin)


def _source_hparams_file(run_folder):
    """Return the hparams file a run was started with (from its header).

    ``sb.create_experiment_directory`` writes ``# Generated <date> from:``
    and the file's path as the first two lines of the run's copy.
    """
    path = os.path.join(run_folder, "hyperparams.yaml")
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
        The run's resolved hyperparameters (plain values).
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
    raw = to_plain(load_yaml(original))
    # Placeholders must be given (and other keys may refer to them).
    overrides = {
        key: run[key]
        for key, value in raw.items()
        if isinstance(value, Tagged) and value.tag == "!PLACEHOLDER"
        and key in run
    }
    for _ in range(len(run) + 1):
        resolved = to_plain(load_yaml(resolve_references(original, overrides)))
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
    return {key: overrides[key] for key in raw if key in overrides}


def _override_text(key, value):
    """One ``--key=value`` argument, as HyperPyYAML reads it back.

    Example
    -------
    >>> print(_override_text("flag", True), _override_text("ch", [8, 16]))
    --flag=True '--ch=[8,16]'
    """
    if isinstance(value, bool):
        text = str(value)
    elif value is None:
        text = "null"
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = str(value)
    return shlex.quote(f"--{key}={text}")


def _display_path(path):
    """Show a path as the card does: ``recipes/...`` or its last component.

    Example
    -------
    >>> _display_path("/home/me/repo/recipes/Mine/hparams/x.yaml")
    'recipes/Mine/hparams/x.yaml'
    >>> _display_path("/tmp/run/my.yaml")
    'my.yaml'
    """
    parts = os.path.normpath(path).split(os.sep)
    if "recipes" in parts:
        return "/".join(parts[len(parts) - parts[::-1].index("recipes") - 1:])
    # Outside the project: the folder says nothing to the card's reader
    # (and would reveal a local path).
    return parts[-1]


def _training_script(run_folder, original):
    """Return the training script of a run, as the card shows it.

    SpeechBrain copies the script into the run folder; the project keeps
    it next to the hparams file, or one level above a ``hparams/`` folder.
    """
    copies = sorted(
        name for name in os.listdir(run_folder) if name.endswith(".py")
    )
    name = copies[0] if len(copies) == 1 else None
    if not original:
        return name or "train.py"
    folder = os.path.dirname(original)
    if os.path.basename(folder) == "hparams":
        folder = os.path.dirname(folder)
    if name is None:
        scripts = glob.glob(os.path.join(folder, "train*.py"))
        name = os.path.basename(scripts[0]) if len(scripts) == 1 else None
    shown = _display_path(folder)
    if not shown.startswith("recipes"):
        return name or "train.py"
    return f"{shown}/{name or 'train.py'}"


def training_command(run_folder, run):
    """Reconstruct the command that trained a run, as far as possible.

    Arguments
    ---------
    run_folder : str
        The run's output folder.
    run : dict
        Its resolved hyperparameters (plain values).

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
        hparams_arg, recovered, original = "hyperparams.yaml", False, None
    args = []
    for key, value in overrides.items():
        if key == "output_folder":
            continue
        # A data folder is the reader's own wherever it was: a relative
        # one named the trainer's working directory, right from neither
        # the repository's root nor the recipe's folder.
        if isinstance(value, str) and (
            os.path.isabs(value) or key == "data_folder"
        ):
            name = _dataset_folder_name(run) if key == "data_folder" else None
            base = os.path.basename(os.path.normpath(value))
            value = "/path/to/" + (name or base)
        args.append(_override_text(key, value))
    script = _training_script(run_folder, original)
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


def _prepared_data_folder(run):
    """Return the data set folder the run's data preparation read.

    The recipes' preparation scripts record it in ``prepare_*.json`` next
    to the manifests (the ECAPA swap reads those manifests from its
    ``data_folder``).
    """
    for key in ("manifest_folder", "data_folder"):
        manifests = run.get(key)
        if not isinstance(manifests, str):
            continue
        for path in glob.glob(os.path.join(manifests, "prepare_*.json")):
            try:
                folder = (_read_json(path) or {}).get("data_folder")
            except (OSError, ValueError, AttributeError):
                continue
            if folder:
                return folder
    return run.get("data_folder")


def _dataset_folder_name(run):
    """Return the data set folder's name (its last component)."""
    folder = _prepared_data_folder(run)
    if not isinstance(folder, str):
        return None
    return os.path.basename(os.path.normpath(folder))


def _dataset_block(run):
    """Return a run's ``dataset_card`` block, checked; None if empty."""
    block = run.get("dataset_card")
    if block is None or block == {}:
        return None
    keys = ", ".join(DATASET_CARD_KEYS)
    if not isinstance(block, dict):
        raise ExportError(
            f"dataset_card must be a mapping (keys {keys}), not {block!r}"
        )
    unknown = sorted(set(block) - set(DATASET_CARD_KEYS))
    if unknown:
        raise ExportError(
            f"dataset_card has unknown keys {unknown}; its keys are {keys}"
        )
    return block


def declared_dataset(run, run_folder=None):
    """Return the data set a run's recipe declares for the model card.

    A recipe declares its data in a top-level ``dataset_card`` mapping of
    its yaml, which the run's ``hyperparams.yaml`` keeps; every key is
    optional:

    * ``id``: the Hugging Face data set id (the card's ``datasets:``, a
      tag and the ``model-index``'s data set type);
    * ``name``: its name in the ``model-index``;
    * ``task``: what the model does, in the card's title (default
      ``audio classification``);
    * ``group``: what the recipe's result groups are, the header of the
      per-group accuracies (default: the run's ``group_by``);
    * ``split``: the tested split's name in the ``model-index`` (default
      ``test``);
    * ``description``: the card's data paragraph
      (:func:`describe_dataset`): a text, where ``{key}`` is the run's
      value of ``key``, ``{key|text}`` gives ``text`` where that is null
      or empty and ``{key:list}`` joins a list's items with commas; or a
      list of such parts, joined by spaces; or ``{key: {value: part}}``,
      the part for the run's value of ``key`` (nothing for another
      value).

    A run whose ``hyperparams.yaml`` has no ``dataset_card`` key (started
    before its recipe declared one) takes the block of the hparams file it
    was started from, when that file is still there.

    Arguments
    ---------
    run : dict
        The run's resolved hyperparameters (plain values).
    run_folder : str, optional
        The run's output folder, to find the hparams file it was started
        from.

    Returns
    -------
    dict or None
        The block, or None where the recipe declares none (no block, or
        an empty one).

    Raises
    ------
    ExportError
        The block is not a mapping or has another key than
        :data:`DATASET_CARD_KEYS`.

    Example
    -------
    >>> declared_dataset({"dataset_card": {"id": "my-sounds"}})
    {'id': 'my-sounds'}
    >>> declared_dataset({"dataset_card": {}}) is None
    True
    """
    if "dataset_card" in run or run_folder is None:
        return _dataset_block(run)
    original = _source_hparams_file(run_folder)
    if not original or not os.path.isfile(original):
        return None
    with open(original, encoding="utf-8") as fin:
        return _dataset_block(to_plain(load_yaml(fin)))


class _Template(string.Formatter):
    """Fill a description's ``{key}`` fields with a run's values."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def get_field(self, field_name, args, kwargs):
        """Return the run's value of ``key`` (``key|text``: text if unset)."""
        key, bar, fallback = field_name.partition("|")
        if key not in self.run and not bar:
            raise ExportError(
                f"dataset_card: the description's {{{field_name}}} names a "
                "key the run's hyperparameters do not have"
            )
        value = self.run.get(key)
        if bar and (value is None or value in ("", [], {})):
            value = fallback
        return value, key

    def format_field(self, value, format_spec):
        """Format a value; ``list`` joins a list's items with commas."""
        if format_spec == "list":
            items = value if isinstance(value, (list, tuple)) else [value]
            return ", ".join(map(str, items))
        return super().format_field(value, format_spec)


def _render(part, run):
    r"""Write a ``dataset_card`` description (or a part of it) for a run.

    A part is a text, a list of parts (joined by spaces, empty ones left
    out) or ``{key: {value: part, ...}}``, the part for the run's value
    of ``key`` (compared as text; none: nothing). In a text, ``{key}`` is
    the run's value of ``key``, ``{key|text}`` gives ``text`` where the
    value is null or empty, and ``{key:list}`` joins a list's items with
    commas.

    Example
    -------
    >>> run = {"fold": 3, "valid": None, "aug": True, "methods": ["a", "b"]}
    >>> _render(["Fold {fold}, validation {valid|default}.",
    ...          {"aug": {"True": "Augmented: {methods:list}."}}], run)
    'Fold 3, validation default. Augmented: a, b.'
    >>> _render(["Fold {fold}.", {"aug": {"False": "Not augmented."}}], run)
    'Fold 3.'
    """
    if part is None:
        return ""
    if isinstance(part, str):
        return _Template(run).format(part).strip()
    if isinstance(part, list):
        return " ".join(text for text in (_render(p, run) for p in part)
                        if text)
    if isinstance(part, dict) and len(part) == 1:
        ((key, choices),) = part.items()
        if isinstance(choices, dict):
            chosen = {str(k): v for k, v in choices.items()}
            return _render(chosen.get(str(run.get(key))), run)
    raise ExportError(
        "dataset_card: a description part is a text, a list of parts or "
        f"{{<key>: {{<value>: <part>}}}}, not {part!r}"
    )


def describe_dataset(run):
    """Describe the training data of a run for the model card.

    The paragraph is the ``description`` of the run's ``dataset_card``
    block, filled with the run's values (:func:`declared_dataset` says
    how it is written); a run whose recipe declares no data set gets
    :data:`UNDECLARED_DATASET`, which says so.

    Arguments
    ---------
    run : dict
        Resolved hyperparameters (plain values).

    Returns
    -------
    str
        Markdown paragraph.

    Raises
    ------
    ExportError
        The description is malformed or names a key the run lacks.

    Example
    -------
    >>> describe_dataset({"test_fold": 3, "dataset_card": {
    ...     "description": "My Sounds, test fold {test_fold}."}})
    'My Sounds, test fold 3.'
    >>> describe_dataset({"data_folder": "/d/sounds"})[:60]
    'The recipe declared no data set, so this card cannot say wha'
    """
    folder = _prepared_data_folder(run)
    synthetic = bool(
        isinstance(folder, str)
        and os.path.isdir(folder)
        and any(n.startswith("synthetic") for n in os.listdir(folder))
    )
    declared = _dataset_block(run)
    name = _dataset_folder_name(run)
    if declared is None:
        text = UNDECLARED_DATASET.format(
            folder=f" (data folder `{name}`)" if name else ""
        )
    else:
        text = _render(declared.get("description"), run)
    if declared is not None and not text:
        text = (
            f"{declared.get('name') or 'Data folder'} (`{name}`): the "
            "train, valid and test manifests of the recipe's data folder."
        )
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
        ("error", "Classification error"),
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


def _class_names(node):
    """Class names (last tag component) of every object in a definition."""
    names = []
    if isinstance(node, Tagged):
        names.append(node.tag.rsplit(".", 1)[-1])
        node = node.value
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        for value in node:
            names += _class_names(value)
    return names


def front_matter(run, modules, results=None, name=None):
    """Write the card's YAML front matter (HuggingFace model metadata).

    Arguments
    ---------
    run : dict
        Resolved hyperparameters (plain values); the data set is its
        ``dataset_card`` block (:func:`declared_dataset`).
    modules : dict
        Exported module name to its definition (:class:`Tagged`).
    results : dict, optional
        The run's ``test_results.json``: its accuracy goes into a
        ``model-index`` (the hub shows metrics from there).
    name : str, optional
        The model's name in the ``model-index``.

    Returns
    -------
    str
        ``---``-delimited YAML.

    Example
    -------
    >>> fbank = Tagged("!new:speechbrain_relevance.lobes.CosGaussFilterbank",
    ...                {})
    >>> run = {"dataset_card": {"id": "my-sounds", "name": "My Sounds"}}
    >>> print(front_matter(run, {"compute_features": fbank},
    ...                    {"accuracy": 0.75, "n": 8}, "Cos-Gauss"))
    ---
    license: apache-2.0
    pipeline_tag: audio-classification
    library_name: speechbrain
    tags:
    - speechbrain
    - audio-classification
    - my-sounds
    - cos-gauss
    - learnable-frontend
    datasets:
    - my-sounds
    metrics:
    - accuracy
    model-index:
    - name: Cos-Gauss
      results:
      - task:
          type: audio-classification
          name: Audio Classification
        dataset:
          type: my-sounds
          name: My Sounds
          split: test
        metrics:
        - type: accuracy
          value: 0.75
          name: Test accuracy (8 clips)
    ---
    """
    classes = set()
    for node in modules.values():
        classes.update(_class_names(node))
    tags = ["speechbrain", "audio-classification"]
    declared = _dataset_block(run) or {}
    dataset = declared.get("id")
    if dataset:
        dataset = str(dataset)
        tags.append(dataset)
    for cls, tag in (
        ("CosGaussFilterbank", "cos-gauss"),
        ("SincFilterbank", "sincnet"),
        ("MultiHeadRelevance", "relevance-weighting"),
        ("ECAPA_TDNN", "ecapa-tdnn"),
    ):
        if cls in classes:
            tags.append(tag)
    if classes & {"CosGaussFilterbank", "SincFilterbank"}:
        tags.append("learnable-frontend")
    meta = {
        "license": "apache-2.0",
        "pipeline_tag": "audio-classification",
        "library_name": "speechbrain",
        "tags": tags,
    }
    if dataset:
        meta["datasets"] = [dataset]
    meta["metrics"] = ["accuracy"]
    if results is not None and results.get("accuracy") is not None:
        task = {"type": "audio-classification", "name": "Audio Classification"}
        data = {
            "type": dataset or "audio",
            "name": str(declared.get("name") or "the run's test data"),
            "split": str(declared.get("split") or "test"),
        }
        metric = {
            "type": "accuracy",
            "value": round(float(results["accuracy"]), 4),
            "name": f"Test accuracy ({results.get('n', '?')} clips)",
        }
        meta["model-index"] = [{
            "name": name or "speechbrain-relevance model",
            "results": [
                {"task": task, "dataset": data, "metrics": [metric]}
            ],
        }]
    return f"---\n{dump_yaml(meta, indent=2)}---"


def _usage(target, example):
    """Return the card's from_hparams snippet."""
    if target.name == "encoder":
        return [
            "```python",
            "from speechbrain.inference.classifiers import EncoderClassifier",
            "",
            "model = EncoderClassifier.from_hparams(",
            '    source="<hub id or local folder>", savedir="<scratch '
            'folder>"',
            ")",
            f'out_prob, score, index, text_lab = model.classify_file("'
            f'{example}")',
            "```",
        ]
    return [
        "```python",
        "from speechbrain_relevance.inference import RelevanceClassifier",
        "",
        'clf = RelevanceClassifier.from_hparams(source="<hub id or local '
        'folder>")',
        f'out_prob, score, index, text_lab = clf.classify_file("{example}")',
        "# Learned representation, relevance masks, weighted representation",
        f'rep = clf.representation_file("{example}")',
        "```",
    ]


def _audio_policy(target, clip_policy):
    """Say what the interface does to audio before classifying it."""
    if target.name == "encoder":
        return (
            "Audio of any sample rate and channel count is resampled and "
            "downmixed to the training format."
        )
    policy = clip_policy or {}
    steps = []
    if policy.get("normalize", True):
        steps.append("peak-normalised")
    if policy.get("clip_duration"):
        steps.append(
            f"zero-padded or cropped to {policy['clip_duration']} s"
        )
    if policy.get("max_duration"):
        steps.append(f"cropped to {policy['max_duration']} s")
    if policy.get("min_duration"):
        steps.append(f"zero-padded to at least {policy['min_duration']} s")
    what = ", ".join(steps) if steps else "used as it is"
    return (
        "Audio of any sample rate and channel count is resampled and "
        f"downmixed; every clip is {what}, as in training (the run's "
        "clip policy). Clips of different lengths in one batch are "
        "classified one at a time, so a clip's result does not depend on "
        "its batch-mates."
    )


def _title(run):
    """Return the card's title: the system's name and the declared task."""
    name = (
        run.get("system_name")
        or run.get("experiment_name")
        or "speechbrain-relevance model"
    )
    task = (_dataset_block(run) or {}).get("task")
    return f"# {name}: {task or 'audio classification'}"


def _summary(modules):
    """Describe the pipeline in one paragraph."""
    classes = set()
    for node in modules.values():
        classes.update(_class_names(node))
    front = (
        "the learnable Cos-Gauss filterbank"
        if "CosGaussFilterbank" in classes
        else "a learnable SincNet filterbank"
        if "SincFilterbank" in classes
        else "a fixed front-end (baseline)"
    )
    relevance = (
        "a multi-head relevance network weighting its time-frequency bins"
        if "MultiHeadRelevance" in classes
        else "no relevance weighting"
    )
    if "ECAPA_TDNN" in classes:
        classifier = "an ECAPA-TDNN embedding classifier"
    else:
        classifier = {
            "FCN": "an FCN classifier",
            "CNNLSTM": "a CNN-LSTM classifier",
            "CompactCNN": "a compact CNN classifier",
        }.get(_class_names(modules.get("classifier"))[:1][0]
              if modules.get("classifier") else None, "a classifier")
    return (
        "A SpeechBrain model from `speechbrain-relevance`, the plug-in "
        "implementing multi-head relevance weighting of learnable audio "
        f"front-ends: {front} on the raw waveform, {relevance}, and "
        f"{classifier}, trained jointly."
    )


def model_card(
    run,
    run_folder,
    target,
    modules,
    labels,
    checkpoint,
    key_text,
    ckpt_keys,
    pipeline=None,
):
    """Write the model card (``README.md``) of an exported model.

    Arguments
    ---------
    run : dict
        Resolved hyperparameters of the run (plain values).
    run_folder : str
        The run's output folder (``test_results.json`` is read there).
    target : speechbrain_relevance.export.Target
        The kind of model folder written.
    modules : dict
        Exported module name to its definition (:class:`Tagged`).
    labels : list of str
        Class names in output order.
    checkpoint : speechbrain.utils.checkpoints.Checkpoint
        The exported checkpoint.
    key_text : str
        How it was chosen (e.g. ``max acc``).
    ckpt_keys : list of str
        Modules shipped as ``<key>.ckpt``.
    pipeline : dict, optional
        The run's pipeline settings (relevance recipe models):
        its ``clip_policy`` is described.

    Returns
    -------
    str
        Markdown.

    Raises
    ------
    ExportError
        The run's ``dataset_card`` block is malformed.
    """
    pipeline = pipeline or {}
    run = {**run, "dataset_card": declared_dataset(run, run_folder)}
    results = _read_json(os.path.join(run_folder, "test_results.json"))
    parts = [
        *_overview(run, modules, labels, results),
        *_usage_section(target, pipeline),
        *_training_section(run_folder, run),
        *_results_section(run, run_folder, target, checkpoint, key_text,
                          results),
        *_files_section(target, ckpt_keys),
    ]
    return "\n".join(parts)


def _overview(run, modules, labels, results):
    """Write the front matter, title, summary and table of modules."""
    name = (
        run.get("system_name")
        or run.get("experiment_name")
        or "speechbrain-relevance model"
    )
    parts = [
        front_matter(run, modules, results, str(name)),
        "",
        _title(run),
        "",
        _summary(modules),
        "",
        "| | |",
        "|---|---|",
    ]
    for key, node in modules.items():
        tag = node.tag if isinstance(node, Tagged) else "?"
        parts.append(f"| {key} | `{tag.split(':', 1)[-1]}` |")
    return parts + [
        f"| Sample rate | {run['sample_rate']} Hz (other rates are "
        "resampled) |",
        f"| Classes | {', '.join(map(str, labels))} |",
        "",
    ]


def _usage_section(target, pipeline):
    """Write the install line, usage, audio policy and security note."""
    return [
        "## Install",
        "",
        "```bash",
        "pip install speechbrain-relevance",
        "```",
        "",
        "This installs SpeechBrain as well; the model's hyperparameters "
        "name classes of both packages.",
        "",
        "## Usage",
        "",
        *_usage(target, "clip.wav"),
        "",
        _audio_policy(target, pipeline.get("clip_policy")),
        "",
        "**Security:** `hyperparams.yaml` is executable: loading it "
        "instantiates the Python classes it names. Only load model folders "
        "from sources you trust. The checkpoints themselves are plain "
        "tensors (`torch.load(..., weights_only=True)` reads them).",
        "",
    ]


def _training_section(run_folder, run):
    """Write the command that trained the model, and its data."""
    command, recovered = training_command(run_folder, run)
    parts = ["## Training", "", "```bash", command, "```", ""]
    if not recovered:
        parts += [
            "The original hyperparameter file was not found; the command "
            "uses the run folder's copies of the training script and of "
            "the resolved `hyperparams.yaml`, which reproduce the run.",
            "",
        ]
    return parts + [
        "Run options (device, precision, distributed launch) are not "
        "recorded by SpeechBrain and are not shown.",
        "",
        "### Data",
        "",
        describe_dataset(run),
        "",
    ]


def _results_section(run, run_folder, target, checkpoint, key_text,
                     results):
    """Say which checkpoint, and the metrics the recipe measured."""
    meta = checkpoint.meta
    averaged = meta.get("averaged_epochs")
    if averaged:
        chosen = (
            f"Checkpoint `{os.path.basename(str(checkpoint.path))}`: the "
            f"average of the parameters of epochs {averaged} (no checkpoint "
            "was selected on validation data)."
        )
    else:
        text = ", ".join(
            f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
            for k, v in meta.items()
            if k not in ("unixtime", "end-of-epoch")
        )
        chosen = (
            f"Checkpoint `{os.path.basename(str(checkpoint.path))}`, chosen "
            f"by {key_text} on the validation data ({text or 'no meta data'})."
        )
    parts = ["## Results", "", chosen, ""]
    if results is None:
        return parts + ["No `test_results.json` was found in the run folder."]
    if key_text != target.test_key_text:
        parts += [
            "Note: the recipe tested the checkpoint chosen by "
            f"{target.test_key_text}; the metrics below may belong to "
            "another checkpoint than the exported one.",
            "",
        ]
    # What the groups are: the recipe's declaration, else its group_by.
    group = (_dataset_block(run) or {}).get("group") or str(
        run.get("group_by", "group")
    ).capitalize()
    patches = _read_json(
        os.path.join(run_folder, "test_results_patches.json")
    )
    return parts + [
        "Measured on the test split by the recipe (`test_results.json`):",
        "",
        _metrics_markdown(results, patches, group),
    ]


def _files_section(target, ckpt_keys):
    """List the files of the folder, the export date and the citation."""
    return [
        "",
        "## Files",
        "",
        "- `hyperparams.yaml`: inference hyperparameters (executable, see "
        "above)",
        *[f"- `{key}.ckpt`: state of `{key}`" for key in ckpt_keys],
        f"- `{target.label_file}`: class names (SpeechBrain "
        "CategoricalEncoder format)",
        "",
        f"Exported on {datetime.date.today().isoformat()} by "
        "`sb-relevance-export` (`python -m speechbrain_relevance.export`).",
        "",
        "## Citation",
        "",
        "The model implements the method of Dutta, Agrawal and Ganapathy, "
        "WASPAA 2021, and is built on SpeechBrain. Please cite both:",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
