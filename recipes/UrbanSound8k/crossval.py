#!/usr/bin/env python3
r"""UrbanSound8k 10-fold cross-validation: run every fold, aggregate.

Each of the ten official folds is the test fold once. Every fold runs
``train.py`` in its own subprocess (plain ``python``, or ``torchrun`` with
``--nproc_per_node``), with the same hyperparameter file and overrides
plus ``--test_fold=<k>``; its results land in the fold's folder
(``fold_folder`` of the hyperparameters, by default
``<output_folder>/fold<k>``).

The run is resumable: a fold whose ``test_results.json`` exists is
skipped, and a fold interrupted in training resumes from its last
checkpoint when the same command is run again (SpeechBrain's
checkpointer does that inside ``train.py``). To redo a fold, delete its
folder.

At the end the fold results are aggregated into
``<output_folder>/crossval_results.md`` and ``.json``: the mean and the
sample standard deviation (``n - 1`` in the denominator; the population
one is in the JSON too) of the per-fold test accuracies, and the
class-wise accuracies pooled over the folds (the summed confusion
matrices) in the layout of the paper's Table 2.

To run::

    python crossval.py hparams/relevance_2head.yaml \\
        --data_folder=/path/to/UrbanSound8K [--folds 1 2 3] \\
        [--nproc_per_node=2 [--distributed_backend=gloo]] [overrides]

Authors
 * speechbrain-relevance developers
"""

import argparse
import json
import logging
import math
import os
import shlex
import subprocess
import sys

import speechbrain as sb
import yaml
from hyperpyyaml import resolve_references

from speechbrain_relevance.training.metrics import confusion_markdown

logger = logging.getLogger("crossval")

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_SCRIPT = os.path.join(HERE, "train.py")
N_FOLDS = 10
RESULTS_FILE = "test_results.json"
PATCH_RESULTS_FILE = "test_results_patches.json"
OUTPUT_PREFIX = "crossval_results"


class _TagTolerantLoader(yaml.SafeLoader):
    """Safe YAML loader that reads HyperPyYAML object tags as None.

    Only plain settings (folders, labels, names) are read from the
    hyperparameters here; building the models just to read them would be
    wasteful, and executing the file has side effects (seeding, folders).
    """


_TagTolerantLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: None
)


def read_settings(hparams_file, overrides="", test_fold=1):
    """Read the plain settings of a hyperparameter file for one fold.

    References and overrides are resolved as ``train.py`` would resolve
    them, but no object is built.

    Arguments
    ---------
    hparams_file : str
        The HyperPyYAML file.
    overrides : str
        YAML overrides (as from ``speechbrain.parse_arguments``).
    test_fold : int
        The test fold, for the keys that depend on it.

    Returns
    -------
    dict
        The top-level settings; object entries are None.
    """
    text = f"{overrides}\ntest_fold: {int(test_fold)}".strip()
    with open(hparams_file, encoding="utf-8") as fin:
        resolved = resolve_references(
            fin, overrides=text, overrides_must_match=True
        )
    return yaml.load(resolved.getvalue(), Loader=_TagTolerantLoader)


#: Settings that may differ between runs without changing the results.
NEUTRAL_KEYS = frozenset({"data_folder", "num_workers"})


def changed_settings(fold_folder, settings):
    """List the settings that differ from those a finished fold used.

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
    """
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or "confusion_matrix" not in summary:
        return None
    return summary


def fold_command(
    hparams_file, fold, args, nproc_per_node=None, distributed_backend=None
):
    """Build the command line that trains and tests one fold.

    Arguments
    ---------
    hparams_file : str
        The hyperparameter file.
    fold : int
        The test fold.
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
    >>> cmd = fold_command("h.yaml", 3, ["--data_folder=d"], 2, "gloo")
    >>> cmd[1:5]
    ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2']
    >>> cmd[-3:]
    ['--data_folder=d', '--test_fold=3', '--distributed_backend=gloo']
    """
    script = [TRAIN_SCRIPT, hparams_file, *args, f"--test_fold={fold}"]
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


def aggregate_folds(results, patch_results=None):
    """Aggregate per-fold test summaries into cross-validation results.

    Arguments
    ---------
    results : dict
        Fold number to its clip-level summary (the content of
        ``test_results.json``: ``accuracy``, ``confusion_matrix``,
        ``labels``, ``n``).
    patch_results : dict, optional
        Fold number to its patch-level summary, for the folds that have
        one.

    Returns
    -------
    dict
        ``folds`` (sorted fold numbers); ``fold_accuracy`` (fold ->
        accuracy); ``mean_accuracy``; ``std_accuracy`` (sample standard
        deviation, ``n - 1``; NaN for one fold); ``population_std_accuracy``
        (``n``); ``pooled_accuracy`` (all test clips of all folds);
        ``class_accuracy`` (label -> accuracy over the summed confusion
        matrices, NaN for a class without clips); ``class_average`` (mean of
        the class-wise accuracies, Table 2's "Avg"); ``confusion_matrix``
        (summed); ``labels``; ``n`` (clips); and, when every fold has a
        patch-level summary, ``patch_fold_accuracy``,
        ``patch_mean_accuracy`` and ``patch_std_accuracy``.

    Example
    -------
    >>> fold = lambda acc, cm: {"accuracy": acc, "confusion_matrix": cm,
    ...                         "labels": ["a", "b"], "n": 4}
    >>> agg = aggregate_folds({
    ...     1: fold(0.75, [[2, 0], [1, 1]]),
    ...     2: fold(0.25, [[1, 1], [2, 0]]),
    ... })
    >>> agg["mean_accuracy"], round(agg["std_accuracy"], 4)
    (0.5, 0.3536)
    >>> agg["class_accuracy"], agg["class_average"]
    ({'a': 0.75, 'b': 0.25}, 0.5)
    """
    if not results:
        raise ValueError("no fold results to aggregate")
    folds = sorted(results)
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
    }
    patch_results = patch_results or {}
    if folds and all(f in patch_results for f in folds):
        patch_accs = [float(patch_results[f]["accuracy"]) for f in folds]
        out["patch_fold_accuracy"] = dict(zip(folds, patch_accs))
        out["patch_mean_accuracy"] = sum(patch_accs) / len(patch_accs)
        out["patch_std_accuracy"] = _std(patch_accs, ddof=1)
    return out


def to_markdown(agg, name="System", abbreviations=None):
    """Render aggregated results as markdown.

    Arguments
    ---------
    agg : dict
        From :func:`aggregate_folds`.
    name : str
        Row label of the class-wise table (the representation).
    abbreviations : dict, optional
        Label -> column name (Table 2: AI, CA, ...).

    Returns
    -------
    str
        Markdown text.

    Example
    -------
    >>> agg = aggregate_folds({1: {"accuracy": 0.5, "labels": ["x", "y"],
    ...     "confusion_matrix": [[1, 0], [1, 0]], "n": 2}})
    >>> print(to_markdown(agg, "Mel").splitlines()[4])
    - Mean accuracy (%): 50.0 ± - (sample std, n - 1, over 1 fold(s))
    """
    abbreviations = abbreviations or {}

    def pct(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return f"{100 * v:.1f}"

    folds = agg["folds"]
    has_patch = "patch_fold_accuracy" in agg
    lines = [
        f"# UrbanSound8k cross-validation: {name}",
        "",
        "Clip-level test accuracy of each fold as the test fold.",
        "",
        f"- Mean accuracy (%): {pct(agg['mean_accuracy'])} ± "
        f"{pct(agg['std_accuracy'])} (sample std, n - 1, over "
        f"{len(folds)} fold(s))",
        f"- Population std (n) (%): {pct(agg['population_std_accuracy'])}",
        f"- Pooled accuracy over all {agg['n']} test clips (%): "
        f"{pct(agg['pooled_accuracy'])}",
    ]
    if has_patch:
        lines.append(
            f"- Patch-level mean accuracy (%): "
            f"{pct(agg['patch_mean_accuracy'])} ± "
            f"{pct(agg['patch_std_accuracy'])} (sample std)"
        )
    if len(folds) != N_FOLDS:
        lines.append(
            f"- Only {len(folds)} of {N_FOLDS} folds: not the full protocol"
        )
    header = ["Fold", "Accuracy (%)"]
    if has_patch:
        header.append("Patch acc. (%)")
    lines += [
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for fold in folds:
        row = [str(fold), pct(agg["fold_accuracy"][fold])]
        if has_patch:
            row.append(pct(agg["patch_fold_accuracy"][fold]))
        lines.append("| " + " | ".join(row) + " |")

    cols = [abbreviations.get(lab, lab) for lab in agg["labels"]]
    lines += [
        "",
        "Class-wise accuracy (%), pooled over the folds (paper Table 2;",
        "Avg is the mean of the class-wise accuracies)",
        "",
        "| " + " | ".join(["Representation", *cols, "Avg"]) + " |",
        "|---|" + "---:|" * (len(cols) + 1),
        "| "
        + " | ".join(
            [name]
            + [pct(agg["class_accuracy"][lab]) for lab in agg["labels"]]
            + [pct(agg["class_average"])]
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


def _json_ready(value):
    """NaN -> None and keys -> str, recursively, for strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def write_results(folder, agg, name="System", abbreviations=None):
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

    Returns
    -------
    tuple of str
        Paths of the markdown and JSON files.
    """
    os.makedirs(folder, exist_ok=True)
    md_path = os.path.join(folder, f"{OUTPUT_PREFIX}.md")
    json_path = os.path.join(folder, f"{OUTPUT_PREFIX}.json")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(to_markdown(agg, name, abbreviations))
    data = dict(agg, system_name=name, std="sample (n - 1)")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(_json_ready(data), f, indent=2)
        f.write("\n")
    return md_path, json_path


def parse_args(argv):
    """Split the command line into crossval options and train.py arguments.

    Arguments
    ---------
    argv : list of str
        The command line (without the program name).

    Returns
    -------
    argparse.Namespace
        ``hparams_file``, ``folds``, ``nproc_per_node``,
        ``distributed_backend``.
    list of str
        Arguments passed on to every ``train.py`` run.

    Example
    -------
    >>> opts, rest = parse_args(["h.yaml", "--folds", "1", "2",
    ...                          "--data_folder=d", "--lr=0.01"])
    >>> opts.folds, rest
    ([1, 2], ['--data_folder=d', '--lr=0.01'])
    >>> parse_args(["h.yaml", "--folds", "3", "--x=!ref <y>"])[1]
    ['--x=!ref <y>']
    """
    parser = argparse.ArgumentParser(
        description="Run and aggregate UrbanSound8k 10-fold "
        "cross-validation; other arguments go to train.py.",
        # Overrides such as --fold_folder must not be taken for --folds.
        allow_abbrev=False,
    )
    parser.add_argument("hparams_file", help="hyperparameter file")
    parser.add_argument(
        "--folds",
        type=int,
        nargs="+",
        default=list(range(1, N_FOLDS + 1)),
        help="test folds to run and aggregate (default: all ten)",
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
        help="backend of torchrun runs (default: nccl on CUDA, else gloo)",
    )
    # argparse takes "--key=a b" (an option with a space, e.g. an override
    # holding "!ref ...") for a value and would feed it to --folds: hide
    # such arguments behind plain tokens and restore them afterwards.
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
    bad = [f for f in opts.folds if not 1 <= f <= N_FOLDS]
    if bad or len(set(opts.folds)) != len(opts.folds):
        parser.error(f"--folds must be distinct folds in 1..10, got "
                     f"{opts.folds}")
    if any(a.split("=", 1)[0] == "--test_fold" for a in rest):
        parser.error("--test_fold is set by crossval.py for each fold; "
                     "use --folds to choose them")
    if opts.distributed_backend and not opts.nproc_per_node:
        # Without torchrun the backend is a run option of train.py.
        rest.append(f"--distributed_backend={opts.distributed_backend}")
    return opts, rest


def run_crossval(argv, runner=None):
    """Run the missing folds, then aggregate and write the results.

    Arguments
    ---------
    argv : list of str
        The command line (see :func:`parse_args`).
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
    """
    runner = runner or subprocess.call
    opts, rest = parse_args(argv)
    # The yaml overrides alone (run options such as --device are not
    # hyperparameters), to find each fold's folder as train.py will.
    _, _, overrides = sb.parse_arguments([opts.hparams_file, *rest])
    settings = {
        fold: read_settings(opts.hparams_file, overrides, fold)
        for fold in opts.folds
    }
    for fold in opts.folds:
        fold_folder = settings[fold]["fold_folder"]
        if fold_done(fold_folder):
            logger.info("Fold %d: results in %s, skipped", fold, fold_folder)
            changed = changed_settings(fold_folder, settings[fold])
            if changed:
                logger.warning(
                    "Fold %d was run with other values of %s; its results "
                    "are reused. Give a new --output_folder to run these "
                    "settings, or delete %s to redo the fold.",
                    fold, ", ".join(changed), fold_folder,
                )
            continue
        cmd = fold_command(
            opts.hparams_file,
            fold,
            rest,
            opts.nproc_per_node,
            opts.distributed_backend,
        )
        logger.info("Fold %d: %s", fold, shlex.join(cmd))
        status = runner(cmd)
        if status != 0:
            raise RuntimeError(
                f"fold {fold} failed (exit status {status}); fix the cause "
                "and run the same command again to resume"
            )
        if not fold_done(fold_folder):
            raise RuntimeError(
                f"fold {fold} finished but {fold_folder}/{RESULTS_FILE} is "
                "missing or unreadable"
            )

    results, patch_results = {}, {}
    for fold in opts.folds:
        fold_folder = settings[fold]["fold_folder"]
        results[fold] = load_summary(os.path.join(fold_folder, RESULTS_FILE))
        patch = load_summary(os.path.join(fold_folder, PATCH_RESULTS_FILE))
        if patch is not None:
            patch_results[fold] = patch
    agg = aggregate_folds(results, patch_results)

    first = settings[opts.folds[0]]
    md_path, _ = write_results(
        first["output_folder"],
        agg,
        name=first.get("system_name") or "System",
        abbreviations=first.get("abbreviations"),
    )
    logger.info(
        "Accuracy over %d fold(s): %.1f%% ± %.1f (sample std); wrote %s",
        len(agg["folds"]),
        100 * agg["mean_accuracy"],
        100 * agg["std_accuracy"] if len(agg["folds"]) > 1 else math.nan,
        md_path,
    )
    return agg


def main(argv=None):
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
    logging.basicConfig(level=logging.INFO, format="%(name)s - %(message)s")
    try:
        run_crossval(sys.argv[1:] if argv is None else argv)
    except RuntimeError as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
