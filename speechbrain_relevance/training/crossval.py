"""Cross-validation driver: run a recipe's ``train.py`` once per fold.

A recipe describes its protocol with a :class:`CrossValidation` (its train
script, the names of its test folds, a dataset title) and gets a command
line, :meth:`CrossValidation.main`, that:

* runs ``train.py <hparams> [args] --test_fold=<name>`` for every fold, each
  in its own subprocess (plain ``python``, or ``torchrun`` with
  ``--nproc_per_node``), with the same hyperparameter file and overrides;
  the fold's results land in its folder, the ``fold_folder`` of the
  hyperparameters as resolved for that fold;
* is resumable: a fold whose ``test_results.json`` exists is skipped (with a
  warning if it was run with other settings), and a fold interrupted in
  training resumes from its last checkpoint when the same command is run
  again (SpeechBrain's checkpointer does that inside ``train.py``);
* aggregates the folds into ``<output_folder>/crossval_results.md`` and
  ``.json``: the per-fold test accuracies, their mean and sample standard
  deviation (``n - 1``; the population one is in the JSON too), the
  accuracy pooled over all test clips, the class-wise accuracies and the
  confusion matrix summed over the folds, and the mean over the folds of
  the best validation accuracy (``valid_results.json``) where ``train.py``
  writes it.

Fold names are ints (UrbanSound8k's folds 1..10) or strings (FSDD's
speakers); a name is given to ``train.py`` and to the hyperparameters as
the YAML value ``test_fold: <name>``, so it must read back as itself.

Authors
 * speechbrain-relevance developers
"""

import argparse
import json
import logging
import math
import numbers
import os
import shlex
import subprocess
import sys
import time

import speechbrain as sb
import yaml
from hyperpyyaml import resolve_references

from speechbrain_relevance.data.preparation import read_json
from speechbrain_relevance.errors import UserError
from speechbrain_relevance.training.metrics import confusion_markdown

logger = logging.getLogger("crossval")

RESULTS_FILE = "test_results.json"
PATCH_RESULTS_FILE = "test_results_patches.json"
VALID_RESULTS_FILE = "valid_results.json"
OUTPUT_PREFIX = "crossval_results"

#: Caption of the class-wise table unless the recipe gives its own.
DEFAULT_CLASS_CAPTION = (
    "Class-wise accuracy (%), pooled over the folds (Avg is the mean of the "
    "class-wise accuracies)"
)

#: Settings that may differ between runs without changing the results.
NEUTRAL_KEYS = frozenset({"data_folder", "num_workers", "dataset_card"})


class _TagTolerantLoader(yaml.SafeLoader):
    """Safe YAML loader that reads HyperPyYAML object tags as None.

    Only plain settings (folders, labels, names) are read from the
    hyperparameters here; building the models just to read them would be
    wasteful, and executing the file has side effects (seeding, folders).
    """


_TagTolerantLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: None
)


def _fold_sort_key(fold):
    """Sort ints before strings, each in their natural order."""
    return (isinstance(fold, str), fold)


def check_fold_name(fold):
    """Check that a fold name survives the trip through a command line.

    ``train.py`` gets ``--test_fold=<name>``, which SpeechBrain turns into
    the YAML override ``test_fold: <name>``; the name must read back as
    itself (``"yes"`` would become True, ``"1"`` the int 1).

    Arguments
    ---------
    fold : int or str
        A fold name.

    Returns
    -------
    int or str
        The name, unchanged.

    Raises
    ------
    ValueError
        If the name is not an int or str, or does not read back as itself.

    Example
    -------
    >>> check_fold_name("theo"), check_fold_name(3)
    ('theo', 3)
    >>> check_fold_name("null")
    Traceback (most recent call last):
    ...
    ValueError: fold name 'null' reads back as None from test_fold: null
    """
    if isinstance(fold, bool) or not isinstance(fold, (numbers.Integral, str)):
        raise ValueError(f"fold name {fold!r} is not an int or a str")
    if isinstance(fold, numbers.Integral):
        fold = int(fold)
    text = f"test_fold: {fold}"
    try:
        back = yaml.safe_load(text)["test_fold"]
    except (yaml.YAMLError, TypeError, KeyError):
        back = None
    if type(back) is not type(fold) or back != fold:
        raise ValueError(
            f"fold name {fold!r} reads back as {back!r} from {text}"
        )
    return fold


def read_settings(hparams_file, overrides="", test_fold=1):
    r"""Read the plain settings of a hyperparameter file for one fold.

    References and overrides are resolved as ``train.py`` would resolve
    them (with ``test_fold: <name>`` added), but no object is built.

    Arguments
    ---------
    hparams_file : str
        The HyperPyYAML file.
    overrides : str
        YAML overrides (as from ``speechbrain.parse_arguments``).
    test_fold : int or str
        The test fold, for the keys that depend on it.

    Returns
    -------
    dict
        The top-level settings; object entries are None.

    Example
    -------
    >>> import tempfile
    >>> path = tempfile.mkstemp(suffix=".yaml")[1]
    >>> with open(path, "w") as f:
    ...     _ = f.write("out: res\ntest_fold: !PLACEHOLDER\n"
    ...                 "fold_folder: !ref <out>/<test_fold>\n")
    >>> read_settings(path, "out: o", "theo")["fold_folder"]
    'o/theo'
    """
    text = f"{overrides}\ntest_fold: {test_fold}".strip()
    with open(hparams_file, encoding="utf-8") as fin:
        resolved = resolve_references(
            fin, overrides=text, overrides_must_match=True
        )
    return yaml.load(resolved.getvalue(), Loader=_TagTolerantLoader)


def changed_settings(fold_folder, settings):
    r"""List the settings that differ from those a finished fold used.

    ``train.py`` saves the resolved hyperparameters of each fold as
    ``hyperparams.yaml`` in its folder; a fold that is skipped because it
    has results may have been run with other settings (e.g. an ablation
    given without a new ``--output_folder``).

    Arguments
    ---------
    fold_folder : str
        The fold's output folder.
    settings : dict
        The current settings of that fold (:func:`read_settings`).

    Returns
    -------
    list of str
        Top-level keys whose values differ (objects are not compared; their
        arguments are keys of their own), ignoring :data:`NEUTRAL_KEYS`;
        empty if the fold saved no hyperparameters.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "hyperparams.yaml"), "w") as f:
    ...     _ = f.write("lr: 0.1\ndata_folder: a\n")
    >>> changed_settings(folder, {"lr": 0.5, "data_folder": "b"})
    ['lr']
    """
    path = os.path.join(fold_folder, "hyperparams.yaml")
    try:
        with open(path, encoding="utf-8") as f:
            used = yaml.load(f, Loader=_TagTolerantLoader)
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(used, dict):
        return []
    keys = (set(used) | set(settings)) - NEUTRAL_KEYS
    return sorted(k for k in keys if used.get(k) != settings.get(k))


def load_summary(path):
    """Read a results JSON written by ``ClassificationReport``.

    Arguments
    ---------
    path : str
        The JSON file.

    Returns
    -------
    dict or None
        The summary, or None if the file is missing or unreadable.

    Example
    -------
    >>> load_summary("/nonexistent/test_results.json") is None
    True
    """
    summary = read_json(path)
    if not isinstance(summary, dict) or "confusion_matrix" not in summary:
        return None
    return summary


def fold_done(fold_folder):
    """Whether a fold finished: its test results exist and parse.

    Arguments
    ---------
    fold_folder : str
        The fold's output folder.

    Returns
    -------
    bool
        True if ``test_results.json`` holds a summary.

    Example
    -------
    >>> import tempfile
    >>> fold_done(tempfile.mkdtemp())
    False
    """
    return load_summary(os.path.join(fold_folder, RESULTS_FILE)) is not None


def progress_line(k, n, fold, seconds, elapsed, left):
    """One line of cross-validation progress, with the time that remains.

    Arguments
    ---------
    k : int
        The fold's position (1-based).
    n : int
        The number of folds.
    fold : str
        The fold's name.
    seconds : list of float
        Durations of the folds trained so far in this call.
    elapsed : float
        Seconds since the call started.
    left : int
        Folds still to train (finished ones found on disk do not count).

    Returns
    -------
    str
        E.g. ``fold 2/6 (jackson) done in 1.4 min; 2.5 min elapsed,
        about 4.8 min left``.

    Example
    -------
    >>> progress_line(2, 6, "jackson", [60.0, 84.0], 150.0, 4)
    'fold 2/6 (jackson) done in 1.4 min; 2.5 min elapsed, about 4.8 min left'
    >>> progress_line(6, 6, "yweweler", [60.0], 60.0, 0)
    'fold 6/6 (yweweler) done in 1.0 min; 1.0 min elapsed, 0 folds left'
    """
    line = (
        f"fold {k}/{n} ({fold}) done in {seconds[-1] / 60:.1f} min; "
        f"{elapsed / 60:.1f} min elapsed, "
    )
    if left <= 0:
        return line + "0 folds left"
    rest = left * sum(seconds) / len(seconds)
    return line + f"about {rest / 60:.1f} min left"


def load_valid_accuracy(fold_folder):
    """Read the validation accuracy of the model a fold tested.

    A fold's tested model is whatever its recipe tests (the epoch best on
    validation, or the average of the last epochs), never chosen on the
    test fold; a ``train.py`` that evaluates it on the validation split
    writes ``valid_results.json`` with an ``accuracy`` field.

    Arguments
    ---------
    fold_folder : str
        The fold's output folder.

    Returns
    -------
    float or None
        The accuracy, or None if the file is missing or unreadable or its
        ``accuracy`` is not a finite number.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> load_valid_accuracy(folder) is None
    True
    >>> with open(os.path.join(folder, VALID_RESULTS_FILE), "w") as f:
    ...     _ = f.write('{"accuracy": 0.875}')
    >>> load_valid_accuracy(folder)
    0.875
    """
    path = os.path.join(fold_folder, VALID_RESULTS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    value = data.get("accuracy") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def fold_command(
    train_script,
    hparams_file,
    fold,
    args,
    nproc_per_node=None,
    distributed_backend=None,
):
    """Build the command line that trains and tests one fold.

    Arguments
    ---------
    train_script : str
        The recipe's ``train.py``.
    hparams_file : str
        The hyperparameter file.
    fold : int or str
        The test fold, given as ``--test_fold=<fold>``.
    args : list of str
        Overrides and run options passed on to ``train.py`` unchanged.
    nproc_per_node : int, optional
        Launch with ``torchrun --standalone`` and this many processes.
    distributed_backend : str, optional
        Backend for ``torchrun`` runs (default: nccl with CUDA, else gloo).

    Returns
    -------
    list of str
        The command.

    Example
    -------
    >>> cmd = fold_command("train.py", "h.yaml", "theo", ["--lr=0.1"])
    >>> cmd[1:]
    ['train.py', 'h.yaml', '--lr=0.1', '--test_fold=theo']
    >>> cmd = fold_command("t.py", "h.yaml", 3, [], 2, "gloo")
    >>> cmd[1:5], cmd[-2:]
    (['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2'],
     ['--test_fold=3', '--distributed_backend=gloo'])
    """
    script = [train_script, hparams_file, *args, f"--test_fold={fold}"]
    if not nproc_per_node:
        return [sys.executable, *script]
    if distributed_backend is None:
        import torch

        distributed_backend = "nccl" if torch.cuda.is_available() else "gloo"
    # ``python -m torch.distributed.run`` is ``torchrun`` for the same
    # interpreter, so the fold runs in this environment.
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc_per_node}",
        *script,
        f"--distributed_backend={distributed_backend}",
    ]


def _std(values, ddof):
    """Return the standard deviation with ``ddof`` (NaN: too few values)."""
    n = len(values)
    if n - ddof <= 0:
        return math.nan
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - ddof))


def aggregate_folds(results, patch_results=None, valid_accuracy=None):
    """Aggregate per-fold test summaries into cross-validation results.

    Arguments
    ---------
    results : dict
        Fold name to its clip-level summary (the content of
        ``test_results.json``: ``accuracy``, ``confusion_matrix``,
        ``labels``, ``n``).
    patch_results : dict, optional
        Fold name to its patch-level summary, for the folds that have one.
    valid_accuracy : dict, optional
        Fold name to the best validation accuracy of its selected model
        (:func:`load_valid_accuracy`; None or missing where unknown).

    Returns
    -------
    dict
        ``folds`` (sorted fold names); ``fold_accuracy`` (fold ->
        accuracy); ``mean_accuracy``; ``std_accuracy`` (sample standard
        deviation, ``n - 1``; NaN for one fold); ``population_std_accuracy``
        (``n``); ``pooled_accuracy`` (all test clips of all folds);
        ``class_accuracy`` (label -> accuracy over the summed confusion
        matrices, NaN for a class without clips); ``class_average`` (mean of
        the class-wise accuracies); ``confusion_matrix`` (summed);
        ``labels``; ``n`` (clips); ``fold_valid_accuracy`` (fold -> best
        validation accuracy or None) and ``mean_valid_accuracy`` (their
        mean if every fold has one, else None); and, when every fold has a
        patch-level summary, ``patch_fold_accuracy``,
        ``patch_mean_accuracy`` and ``patch_std_accuracy``.

    Example
    -------
    >>> fold = lambda acc, cm: {"accuracy": acc, "confusion_matrix": cm,
    ...                         "labels": ["a", "b"], "n": 4}
    >>> agg = aggregate_folds({
    ...     "theo": fold(0.75, [[2, 0], [1, 1]]),
    ...     "lucas": fold(0.25, [[1, 1], [2, 0]]),
    ... }, valid_accuracy={"theo": 0.9, "lucas": 0.7})
    >>> agg["folds"], agg["mean_accuracy"], round(agg["std_accuracy"], 4)
    (['lucas', 'theo'], 0.5, 0.3536)
    >>> agg["class_accuracy"], agg["class_average"]
    ({'a': 0.75, 'b': 0.25}, 0.5)
    >>> round(agg["mean_valid_accuracy"], 4)
    0.8
    """
    if not results:
        raise ValueError("no fold results to aggregate")
    folds = sorted(results, key=_fold_sort_key)
    labels = list(results[folds[0]]["labels"])
    n_classes = len(labels)
    confusion = [[0] * n_classes for _ in range(n_classes)]
    for fold in folds:
        summary = results[fold]
        if list(summary["labels"]) != labels:
            raise ValueError(
                f"fold {fold} has labels {summary['labels']}, fold "
                f"{folds[0]} has {labels}"
            )
        for i, row in enumerate(summary["confusion_matrix"]):
            for j, count in enumerate(row):
                confusion[i][j] += int(count)

    accs = [float(results[f]["accuracy"]) for f in folds]
    n_total = sum(sum(row) for row in confusion)
    correct = sum(confusion[i][i] for i in range(n_classes))
    class_acc = {}
    for i, label in enumerate(labels):
        count = sum(confusion[i])
        class_acc[label] = confusion[i][i] / count if count else math.nan
    present = [v for v in class_acc.values() if not math.isnan(v)]
    valid_accuracy = valid_accuracy or {}
    valid = {f: valid_accuracy.get(f) for f in folds}
    if all(v is not None for v in valid.values()):
        mean_valid = sum(float(v) for v in valid.values()) / len(folds)
    else:
        mean_valid = None
    out = {
        "folds": folds,
        "fold_accuracy": dict(zip(folds, accs)),
        "mean_accuracy": sum(accs) / len(accs),
        "std_accuracy": _std(accs, ddof=1),
        "population_std_accuracy": _std(accs, ddof=0),
        "pooled_accuracy": correct / n_total if n_total else math.nan,
        "class_accuracy": class_acc,
        "class_average": sum(present) / len(present) if present else math.nan,
        "confusion_matrix": confusion,
        "labels": labels,
        "n": n_total,
        "fold_valid_accuracy": valid,
        "mean_valid_accuracy": mean_valid,
    }
    patch_results = patch_results or {}
    if folds and all(f in patch_results for f in folds):
        patch_accs = [float(patch_results[f]["accuracy"]) for f in folds]
        out["patch_fold_accuracy"] = dict(zip(folds, patch_accs))
        out["patch_mean_accuracy"] = sum(patch_accs) / len(patch_accs)
        out["patch_std_accuracy"] = _std(patch_accs, ddof=1)
    return out


def _pct(value):
    """Format a fraction as a percentage with one decimal; '-' if unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.1f}"


def to_markdown(
    agg,
    name="System",
    abbreviations=None,
    title="Cross-validation",
    n_folds=None,
    class_caption=DEFAULT_CLASS_CAPTION,
):
    """Render aggregated results as markdown.

    Arguments
    ---------
    agg : dict
        From :func:`aggregate_folds`.
    name : str
        Row label of the class-wise table (the representation).
    abbreviations : dict, optional
        Label -> column name (e.g. the paper's AI, CA, ...).
    title : str
        Heading, followed by ``: <name>``.
    n_folds : int, optional
        Number of folds of the full protocol; fewer aggregated folds are
        flagged as not the full protocol.
    class_caption : str
        Caption of the class-wise table.

    Returns
    -------
    str
        Markdown text.

    Example
    -------
    >>> agg = aggregate_folds({"ann": {"accuracy": 0.5, "labels": ["x", "y"],
    ...     "confusion_matrix": [[1, 0], [1, 0]], "n": 2}})
    >>> lines = to_markdown(agg, "Mel", title="FSDD cross-validation",
    ...                     n_folds=6).splitlines()
    >>> lines[0]
    '# FSDD cross-validation: Mel'
    >>> print(lines[4])
    - Mean accuracy (%): 50.0 ± - (sample std, n - 1, over 1 fold(s))
    >>> lines[7]
    '- Only 1 of 6 folds: not the full protocol'
    """
    abbreviations = abbreviations or {}
    folds = agg["folds"]
    has_patch = "patch_fold_accuracy" in agg
    fold_valid = agg.get("fold_valid_accuracy") or {}
    has_valid = any(v is not None for v in fold_valid.values())
    lines = [
        f"# {title}: {name}",
        "",
        "Clip-level test accuracy of each fold as the test fold.",
        "",
        f"- Mean accuracy (%): {_pct(agg['mean_accuracy'])} ± "
        f"{_pct(agg['std_accuracy'])} (sample std, n - 1, over "
        f"{len(folds)} fold(s))",
        f"- Population std (n) (%): {_pct(agg['population_std_accuracy'])}",
        f"- Pooled accuracy over all {agg['n']} test clips (%): "
        f"{_pct(agg['pooled_accuracy'])}",
    ]
    if has_patch:
        lines.append(
            f"- Patch-level mean accuracy (%): "
            f"{_pct(agg['patch_mean_accuracy'])} ± "
            f"{_pct(agg['patch_std_accuracy'])} (sample std)"
        )
    if agg.get("mean_valid_accuracy") is not None:
        lines.append(
            f"- Mean validation accuracy of the tested models (%): "
            f"{_pct(agg['mean_valid_accuracy'])} (nothing chosen on test)"
        )
    elif has_valid:
        missing = sum(v is None for v in fold_valid.values())
        lines.append(
            f"- Validation accuracy missing for {missing} fold(s): "
            "no mean"
        )
    if n_folds is not None and len(folds) != n_folds:
        lines.append(
            f"- Only {len(folds)} of {n_folds} folds: not the full protocol"
        )
    header = ["Fold", "Accuracy (%)"]
    if has_patch:
        header.append("Patch acc. (%)")
    if has_valid:
        header.append("Best valid acc. (%)")
    lines += [
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for fold in folds:
        row = [str(fold), _pct(agg["fold_accuracy"][fold])]
        if has_patch:
            row.append(_pct(agg["patch_fold_accuracy"][fold]))
        if has_valid:
            row.append(_pct(fold_valid.get(fold)))
        lines.append("| " + " | ".join(row) + " |")

    cols = [abbreviations.get(lab, lab) for lab in agg["labels"]]
    lines += [
        "",
        class_caption,
        "",
        "| " + " | ".join(["Representation", *cols, "Avg"]) + " |",
        "|---|" + "---:|" * (len(cols) + 1),
        "| "
        + " | ".join(
            [name]
            + [_pct(agg["class_accuracy"][lab]) for lab in agg["labels"]]
            + [_pct(agg["class_average"])]
        )
        + " |",
        "",
    ]
    lines += confusion_markdown(
        cols,
        agg["confusion_matrix"],
        "Confusion matrix summed over the folds (rows: true, columns: "
        "predicted)",
    )
    return "\n".join(lines) + "\n"


def json_ready(value):
    """Return ``value`` for strict JSON: NaN -> None, keys -> str, recursively.

    Arguments
    ---------
    value : object
        Numbers, strings, lists, tuples and dicts.

    Returns
    -------
    object
        The converted value.

    Example
    -------
    >>> json_ready({1: [float("nan"), 0.5]})
    {'1': [None, 0.5]}
    """
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def write_results(
    folder,
    agg,
    name="System",
    abbreviations=None,
    title="Cross-validation",
    n_folds=None,
    class_caption=DEFAULT_CLASS_CAPTION,
):
    """Write ``crossval_results.md`` and ``.json`` into ``folder``.

    Arguments
    ---------
    folder : str
        Output folder (created if missing).
    agg : dict
        From :func:`aggregate_folds`.
    name : str
        Row label of the class-wise table.
    abbreviations : dict, optional
        Label -> column name.
    title : str
        Heading of the markdown (:func:`to_markdown`).
    n_folds : int, optional
        Folds of the full protocol (:func:`to_markdown`).
    class_caption : str
        Caption of the class-wise table.

    Returns
    -------
    tuple of str
        Paths of the markdown and JSON files.

    Example
    -------
    >>> import tempfile
    >>> agg = aggregate_folds({"ann": {"accuracy": 1.0, "labels": ["x"],
    ...     "confusion_matrix": [[2]], "n": 2}})
    >>> md, js = write_results(tempfile.mkdtemp(), agg, "Mel")
    >>> with open(js) as f:
    ...     data = json.load(f)
    >>> data["fold_accuracy"], data["mean_valid_accuracy"]
    ({'ann': 1.0}, None)
    """
    os.makedirs(folder, exist_ok=True)
    md_path = os.path.join(folder, f"{OUTPUT_PREFIX}.md")
    json_path = os.path.join(folder, f"{OUTPUT_PREFIX}.json")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(
            to_markdown(
                agg, name, abbreviations, title, n_folds, class_caption
            )
        )
    data = dict(agg, system_name=name, std="sample (n - 1)")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(json_ready(data), f, indent=2)
        f.write("\n")
    return md_path, json_path


class _Parser(argparse.ArgumentParser):
    """Argument parser; overrides such as --fold_folder are not --folds."""

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, **kwargs)


class CrossValidation:
    """A recipe's cross-validation protocol and its command line.

    Arguments
    ---------
    train_script : str
        The recipe's ``train.py``; it must accept ``--test_fold=<name>``,
        resolve ``fold_folder`` and ``output_folder`` in its
        hyperparameters, and write ``test_results.json`` (and optionally
        ``valid_results.json``) into the fold folder.
    folds : sequence of int or str
        The fold names, in the recipe's order (e.g. ``range(1, 11)`` or the
        speaker names).
    title : str
        The dataset, as in the markdown heading ``<title> cross-validation``.
    class_caption : str, optional
        Caption of the class-wise table of the markdown.
    description : str, optional
        Description in the command line's help.

    Example
    -------
    >>> cv = CrossValidation("train.py", ["ann", "bob", "cy"], "Toy")
    >>> opts, rest = cv.parse_args(["h.yaml", "--folds", "cy", "ann",
    ...                             "--lr=0.1"])
    >>> opts.folds, rest
    (['cy', 'ann'], ['--lr=0.1'])
    >>> fold_command(cv.train_script, "h.yaml", "cy", rest)[1:]
    ['train.py', 'h.yaml', '--lr=0.1', '--test_fold=cy']
    """

    def __init__(
        self,
        train_script,
        folds,
        title,
        class_caption=DEFAULT_CLASS_CAPTION,
        description=None,
    ):
        self.train_script = train_script
        self.folds = tuple(check_fold_name(f) for f in folds)
        if not self.folds:
            raise ValueError("a cross-validation needs at least one fold")
        names = [str(f) for f in self.folds]
        if len(set(names)) != len(names):
            raise ValueError(f"fold names must be distinct: {names}")
        self.title = title
        self.class_caption = class_caption
        self.description = description or (
            f"Run and aggregate {title} cross-validation over the folds "
            f"{', '.join(names)}; other arguments go to {train_script}."
        )

    def match_folds(self, tokens):
        """Turn command-line fold tokens into the recipe's fold names.

        Arguments
        ---------
        tokens : list of str
            Fold names as typed (``"3"`` for the int fold 3).

        Returns
        -------
        list of int or str
            The fold names, in the given order.

        Raises
        ------
        ValueError
            For an unknown or repeated fold, naming the known ones.

        Example
        -------
        >>> CrossValidation("t.py", range(1, 4), "X").match_folds(["3", "1"])
        [3, 1]
        >>> CrossValidation("t.py", ["a", "b"], "X").match_folds(["c"])
        Traceback (most recent call last):
        ...
        ValueError: unknown fold(s) c; the folds are a, b
        """
        known = {str(f): f for f in self.folds}
        out, unknown = [], []
        for token in tokens:
            fold = known.get(str(token).strip())
            if fold is None and any(
                isinstance(f, numbers.Integral) for f in self.folds
            ):
                try:
                    fold = known.get(str(int(token)))
                except ValueError:
                    fold = None
            if fold is None:
                unknown.append(str(token))
            else:
                out.append(fold)
        if unknown:
            raise ValueError(
                f"unknown fold(s) {', '.join(unknown)}; the folds are "
                + ", ".join(str(f) for f in self.folds)
            )
        if len(set(out)) != len(out):
            raise ValueError(
                "each fold may be given once, got "
                + ", ".join(str(f) for f in out)
            )
        return out

    def parse_args(self, argv):
        """Split the command line into driver options and train.py ones.

        Arguments
        ---------
        argv : list of str
            The command line (without the program name).

        Returns
        -------
        argparse.Namespace
            ``hparams_file``, ``folds`` (the recipe's fold names),
            ``nproc_per_node``, ``distributed_backend``.
        list of str
            Arguments passed on to every ``train.py`` run.

        Example
        -------
        >>> cv = CrossValidation("t.py", range(1, 4), "X")
        >>> opts, rest = cv.parse_args(["h.yaml", "--folds", "1", "2",
        ...                             "--data_folder=d", "--lr=0.01"])
        >>> opts.folds, rest
        ([1, 2], ['--data_folder=d', '--lr=0.01'])
        >>> cv.parse_args(["h.yaml", "--folds", "3", "--x=!ref <y>"])[1]
        ['--x=!ref <y>']
        """
        names = ", ".join(str(f) for f in self.folds)
        parser = _Parser(description=self.description)
        parser.add_argument("hparams_file", help="hyperparameter file")
        parser.add_argument(
            "--folds",
            nargs="+",
            default=None,
            help=f"test folds to run and aggregate, among {names} "
            "(default: all)",
        )
        parser.add_argument(
            "--nproc_per_node",
            type=int,
            default=None,
            help="run each fold with torchrun and this many processes",
        )
        parser.add_argument(
            "--distributed_backend",
            default=None,
            help="backend of torchrun runs (default: nccl on CUDA, else "
            "gloo)",
        )
        # argparse takes "--key=a b" (an option with a space, e.g. an
        # override holding "!ref ...") for a value and would feed it to
        # --folds: hide such arguments behind plain tokens and restore
        # them afterwards.
        hidden = {}
        safe = []
        for i, arg in enumerate(argv):
            if arg.startswith("-") and " " in arg:
                token = f"--crossval-hidden-argument-{i}"
                hidden[token] = arg
                arg = token
            safe.append(arg)
        opts, rest = parser.parse_known_args(safe)
        rest = [hidden.get(arg, arg) for arg in rest]
        if opts.folds is None:
            opts.folds = list(self.folds)
        else:
            try:
                opts.folds = self.match_folds(opts.folds)
            except ValueError as e:
                parser.error(f"--folds: {e}")
        if any(a.split("=", 1)[0] == "--test_fold" for a in rest):
            parser.error(
                "--test_fold is set by the cross-validation for each fold; "
                "use --folds to choose them"
            )
        if opts.distributed_backend and not opts.nproc_per_node:
            # Without torchrun the backend is a run option of train.py.
            rest.append(f"--distributed_backend={opts.distributed_backend}")
        return opts, rest

    def markdown_options(self):
        """Return this recipe's keyword arguments of :func:`to_markdown`.

        Returns
        -------
        dict
            ``title``, ``n_folds`` and ``class_caption``, for
            :func:`to_markdown` and :func:`write_results`.

        Example
        -------
        >>> CrossValidation("t.py", ["a", "b"], "Toy").markdown_options()[
        ...     "title"]
        'Toy cross-validation'
        """
        return {
            "title": f"{self.title} cross-validation",
            "n_folds": len(self.folds),
            "class_caption": self.class_caption,
        }

    def check(self, hparams_file, run_opts, overrides, fold):
        """Apply ``train.py``'s checks of the options and the yaml.

        The run options (:func:`~speechbrain_relevance.checks.
        check_run_opts`) and the yaml with the overrides and
        ``test_fold: <fold>`` (:func:`~speechbrain_relevance.cli.
        load_hparams`, which builds its objects as ``train.py`` does), so
        that a mistake stops the cross-validation before its first fold
        with the error ``train.py`` would give.

        Arguments
        ---------
        hparams_file : str
            The hyperparameter file.
        run_opts : mapping
            SpeechBrain's run options.
        overrides : str
            The yaml overrides.
        fold : int or str
            A fold, for the keys that depend on it.

        Raises
        ------
        speechbrain_relevance.errors.ConfigError
            As ``train.py`` would.
        """
        from speechbrain_relevance.checks import check_run_opts
        from speechbrain_relevance.cli import load_hparams

        check_run_opts(run_opts)
        load_hparams(
            hparams_file, f"{overrides or ''}\ntest_fold: {fold}".strip()
        )

    def run(self, argv, runner=None):
        """Run the missing folds, then aggregate and write the results.

        Arguments
        ---------
        argv : list of str
            The command line (see :meth:`parse_args`).
        runner : callable, optional
            Runs one command (a list of str) and returns its exit status;
            defaults to :func:`subprocess.call`.

        Returns
        -------
        dict
            The aggregated results (:func:`aggregate_folds`).

        Raises
        ------
        RuntimeError
            If a fold's run fails or leaves no results.
        speechbrain_relevance.errors.UserError
            If the options or the yaml cannot work (:meth:`check`), before
            any fold runs.
        """
        runner = runner or subprocess.call
        opts, rest = self.parse_args(argv)
        # The yaml overrides alone (run options such as --device are not
        # hyperparameters), to find each fold's folder as train.py will.
        _, run_opts, overrides = sb.parse_arguments([opts.hparams_file, *rest])
        # train.py's checks, before the first fold runs.
        self.check(opts.hparams_file, run_opts, overrides, opts.folds[0])
        settings = {
            fold: read_settings(opts.hparams_file, overrides, fold)
            for fold in opts.folds
        }
        start, timed = time.monotonic(), []
        to_run = [f for f in opts.folds
                  if not fold_done(settings[f]["fold_folder"])]
        for k, fold in enumerate(opts.folds, 1):
            fold_folder = settings[fold]["fold_folder"]
            if fold_done(fold_folder):
                logger.info(
                    "Fold %s: results in %s, skipped", fold, fold_folder
                )
                changed = changed_settings(fold_folder, settings[fold])
                if changed:
                    logger.warning(
                        "Fold %s was run with other values of %s; its "
                        "results are reused. Give a new --output_folder to "
                        "run these settings, or delete %s to redo the fold.",
                        fold, ", ".join(changed), fold_folder,
                    )
                continue
            cmd = fold_command(
                self.train_script,
                opts.hparams_file,
                fold,
                rest,
                opts.nproc_per_node,
                opts.distributed_backend,
            )
            logger.info(
                "Fold %d/%d (%s): %s", k, len(opts.folds), fold,
                shlex.join(cmd),
            )
            began = time.monotonic()
            status = runner(cmd)
            if status != 0:
                raise RuntimeError(
                    f"fold {fold} failed (exit status {status}); fix the "
                    "cause and run the same command again to resume"
                )
            if not fold_done(fold_folder):
                raise RuntimeError(
                    f"fold {fold} finished but {fold_folder}/{RESULTS_FILE} "
                    "is missing or unreadable"
                )
            timed.append(time.monotonic() - began)
            logger.info(
                progress_line(
                    k, len(opts.folds), fold, timed,
                    time.monotonic() - start, len(to_run) - len(timed),
                )
            )

        results, patch_results, valid = {}, {}, {}
        for fold in opts.folds:
            fold_folder = settings[fold]["fold_folder"]
            results[fold] = load_summary(
                os.path.join(fold_folder, RESULTS_FILE)
            )
            patch = load_summary(os.path.join(fold_folder, PATCH_RESULTS_FILE))
            if patch is not None:
                patch_results[fold] = patch
            valid[fold] = load_valid_accuracy(fold_folder)
        agg = aggregate_folds(results, patch_results, valid)

        first = settings[opts.folds[0]]
        md_path, _ = write_results(
            first["output_folder"],
            agg,
            name=first.get("system_name") or "System",
            abbreviations=first.get("abbreviations"),
            **self.markdown_options(),
        )
        logger.info(
            "Accuracy over %d fold(s): %.1f%% ± %.1f (sample std); wrote %s",
            len(agg["folds"]),
            100 * agg["mean_accuracy"],
            100 * agg["std_accuracy"] if len(agg["folds"]) > 1 else math.nan,
            md_path,
        )
        return agg

    def main(self, argv=None):
        """Command-line entry point.

        Arguments
        ---------
        argv : list of str, optional
            Arguments; ``sys.argv[1:]`` if None.

        Returns
        -------
        int
            Exit status.
        """
        logging.basicConfig(
            level=logging.INFO, format="%(name)s - %(message)s"
        )
        try:
            self.run(sys.argv[1:] if argv is None else argv)
        except (UserError, FileNotFoundError) as e:
            # One line naming the key or file, as train.py gives it.
            prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "crossval"
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 1
        except RuntimeError as e:
            logger.error("%s", e)
            return 1
        return 0
