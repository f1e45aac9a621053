#!/usr/bin/env python3
r"""FSDD leave-one-speaker-out cross-validation: run every fold, aggregate.

Each of the six speakers of the Free Spoken Digit Dataset (george,
jackson, lucas, nicolas, theo, yweweler) is the test speaker once: the
fold named after a speaker tests on all of that speaker's clips, validates
(selects the model) on other speakers' clips and trains on the rest, as
``train.py`` and ``prepare_fsdd.py`` (``split="speaker"``) define it.

Every fold runs ``recipes/FSDD/train.py`` in its own subprocess (plain
``python``, or ``torchrun`` with ``--nproc_per_node``), with the same
hyperparameter file and overrides plus ``--test_fold=<speaker>``. The
hyperparameters must hold ``test_fold: !PLACEHOLDER``, an
``output_folder`` and a ``fold_folder`` (e.g.
``!ref <output_folder>/<test_fold>``) that this driver resolves for each
speaker, as ``train.py`` will, to find the fold's results: its
``test_results.json`` (a ``ClassificationReport`` summary; a fold that has
one is skipped, so the run is resumable) and, if ``train.py`` writes it,
``valid_results.json`` with the ``accuracy`` of the model selected on
validation.

At the end the folds are aggregated into
``<output_folder>/crossval_results.md`` and ``.json``: the per-speaker test
accuracies, their mean and sample standard deviation (``n - 1``), the
accuracy pooled over all test clips, the digit-wise accuracies and the
summed confusion matrix, and the mean best validation accuracy
(``mean_valid_accuracy``, None unless every fold recorded one).

The dataset's official split (takes 0-4 of every speaker and digit are the
test set) is a single train/valid/test split, not a cross-validation: run
``train.py`` alone for it (``prepare_fsdd(..., split="official")``).

This file only names the train script, the speakers and the captions; the
machinery is :mod:`speechbrain_relevance.training.crossval`, shared with
the UrbanSound8k recipe. It does not import ``train.py``.

To run::

    python crossval.py hparams/<file>.yaml --data_folder=/path/to/fsdd \\
        [--folds theo lucas] [--nproc_per_node=2] [overrides]

Authors
 * speechbrain-relevance developers
"""

import os
import sys

from speechbrain_relevance.data.layouts import FSDD_SPEAKERS
from speechbrain_relevance.training.crossval import (
    NEUTRAL_KEYS,
    OUTPUT_PREFIX,
    RESULTS_FILE,
    VALID_RESULTS_FILE,
    CrossValidation,
    aggregate_folds,
    changed_settings,
    fold_done,
    load_summary,
    load_valid_accuracy,
    logger,
    read_settings,
)

__all__ = [
    "CROSSVAL",
    "NEUTRAL_KEYS",
    "OUTPUT_PREFIX",
    "RESULTS_FILE",
    "SPEAKERS",
    "TRAIN_SCRIPT",
    "VALID_RESULTS_FILE",
    "aggregate_folds",
    "changed_settings",
    "fold_command",
    "fold_done",
    "load_summary",
    "load_valid_accuracy",
    "logger",
    "main",
    "parse_args",
    "read_settings",
    "run_crossval",
    "to_markdown",
    "write_results",
]

HERE = os.path.dirname(os.path.abspath(__file__))
#: The recipe's training script (run in a subprocess, never imported).
TRAIN_SCRIPT = os.path.join(HERE, "train.py")
#: The folds: one per speaker, named after it.
SPEAKERS = FSDD_SPEAKERS

#: The FSDD protocol: leave one speaker out, six folds.
CROSSVAL = CrossValidation(
    TRAIN_SCRIPT,
    SPEAKERS,
    "FSDD leave-one-speaker-out",
    class_caption=(
        "Digit-wise accuracy (%), pooled over the folds (Avg is the mean of "
        "the digit-wise accuracies)"
    ),
    description="Run and aggregate FSDD leave-one-speaker-out "
    "cross-validation (one fold per test speaker: "
    + ", ".join(SPEAKERS)
    + "). Each fold runs recipes/FSDD/train.py with --test_fold=<speaker>; "
    "other arguments go to train.py.",
)


def fold_command(
    hparams_file, fold, args, nproc_per_node=None, distributed_backend=None
):
    """Build the command line that trains and tests one speaker's fold.

    Arguments
    ---------
    hparams_file : str
        The hyperparameter file.
    fold : str
        The test speaker.
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
    >>> cmd = fold_command("h.yaml", "theo", ["--data_folder=d"])
    >>> os.path.basename(cmd[1]), cmd[2:]
    ('train.py', ['h.yaml', '--data_folder=d', '--test_fold=theo'])
    """
    return CROSSVAL.fold_command(
        hparams_file, fold, args, nproc_per_node, distributed_backend
    )


def to_markdown(agg, name="System", abbreviations=None):
    """Render aggregated results as markdown.

    Arguments
    ---------
    agg : dict
        From :func:`aggregate_folds`.
    name : str
        Row label of the digit-wise table (the representation).
    abbreviations : dict, optional
        Label -> column name.

    Returns
    -------
    str
        Markdown text.

    Example
    -------
    >>> agg = aggregate_folds({"theo": {"accuracy": 0.5, "labels": ["0", "1"],
    ...     "confusion_matrix": [[1, 0], [1, 0]], "n": 2}})
    >>> to_markdown(agg, "Mel").splitlines()[0]
    '# FSDD leave-one-speaker-out cross-validation: Mel'
    """
    return CROSSVAL.to_markdown(agg, name, abbreviations)


def write_results(folder, agg, name="System", abbreviations=None):
    """Write ``crossval_results.md`` and ``.json`` into ``folder``.

    Arguments
    ---------
    folder : str
        Output folder (created if missing).
    agg : dict
        From :func:`aggregate_folds`.
    name : str
        Row label of the digit-wise table.
    abbreviations : dict, optional
        Label -> column name.

    Returns
    -------
    tuple of str
        Paths of the markdown and JSON files.
    """
    return CROSSVAL.write_results(folder, agg, name, abbreviations)


def parse_args(argv):
    """Split the command line into crossval options and train.py arguments.

    Arguments
    ---------
    argv : list of str
        The command line (without the program name).

    Returns
    -------
    argparse.Namespace
        ``hparams_file``, ``folds`` (speaker names), ``nproc_per_node``,
        ``distributed_backend``.
    list of str
        Arguments passed on to every ``train.py`` run.

    Example
    -------
    >>> opts, rest = parse_args(["h.yaml", "--folds", "theo", "george",
    ...                          "--data_folder=d"])
    >>> opts.folds, rest
    (['theo', 'george'], ['--data_folder=d'])
    >>> parse_args(["h.yaml"])[0].folds == list(SPEAKERS)
    True
    """
    return CROSSVAL.parse_args(argv)


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
    return CROSSVAL.run(argv, runner)


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
    return CROSSVAL.main(argv)


if __name__ == "__main__":
    sys.exit(main())
