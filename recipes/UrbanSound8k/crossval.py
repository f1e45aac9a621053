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

The machinery is the recipe-independent
:mod:`speechbrain_relevance.training.crossval`; this file only names the
train script, the folds and the captions.

To run::

    python crossval.py hparams/relevance_2head.yaml \\
        --data_folder=/path/to/UrbanSound8K [--folds 1 2 3] \\
        [--nproc_per_node=2 [--distributed_backend=gloo]] [overrides]

Authors
 * speechbrain-relevance developers
"""

import os
import sys

from speechbrain_relevance.data.layouts import URBANSOUND_N_FOLDS
from speechbrain_relevance.training.crossval import (
    NEUTRAL_KEYS,
    OUTPUT_PREFIX,
    PATCH_RESULTS_FILE,
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
    "N_FOLDS",
    "NEUTRAL_KEYS",
    "OUTPUT_PREFIX",
    "PATCH_RESULTS_FILE",
    "RESULTS_FILE",
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
TRAIN_SCRIPT = os.path.join(HERE, "train.py")
N_FOLDS = URBANSOUND_N_FOLDS

#: The UrbanSound8k protocol: the ten official folds, Table 2's caption.
CROSSVAL = CrossValidation(
    TRAIN_SCRIPT,
    range(1, N_FOLDS + 1),
    "UrbanSound8k",
    class_caption=(
        "Class-wise accuracy (%), pooled over the folds (paper Table 2;\n"
        "Avg is the mean of the class-wise accuracies)"
    ),
    description="Run and aggregate UrbanSound8k 10-fold cross-validation; "
    "other arguments go to train.py.",
)


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
    >>> lines = to_markdown(agg, "Mel").splitlines()
    >>> lines[0]
    '# UrbanSound8k cross-validation: Mel'
    >>> print(lines[4])
    - Mean accuracy (%): 50.0 ± - (sample std, n - 1, over 1 fold(s))
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
        Row label of the class-wise table.
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
