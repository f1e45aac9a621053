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

Example
-------
>>> opts, train_args = parse_args(["h.yaml", "--folds", "theo", "--lr=0.1"])
>>> opts.folds, train_args
(['theo'], ['--lr=0.1'])
>>> fold_command(TRAIN_SCRIPT, "h.yaml", "theo", train_args)[-2:]
['--lr=0.1', '--test_fold=theo']

Authors
 * speechbrain-relevance developers
"""

import os
import sys

from speechbrain_relevance.training.crossval import (
    CrossValidation,
    aggregate_folds,
    fold_command,
    to_markdown,
    write_results,
)

__all__ = [
    "CROSSVAL",
    "TRAIN_SCRIPT",
    "aggregate_folds",
    "fold_command",
    "main",
    "parse_args",
    "run_crossval",
    "to_markdown",
    "write_results",
]

HERE = os.path.dirname(os.path.abspath(__file__))
# The layout's names come from the data preparation, found by name as
# train.py finds it (the training script itself is never imported).
sys.path.insert(0, HERE)
from prepare_fsdd import FSDD_SPEAKERS  # noqa: E402

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

# The recipe's entry points are the shared driver's, bound to its protocol;
# fold_command, to_markdown and write_results are the driver's functions
# (give them TRAIN_SCRIPT, or **CROSSVAL.markdown_options()).
parse_args = CROSSVAL.parse_args
run_crossval = CROSSVAL.run
main = CROSSVAL.main


if __name__ == "__main__":
    sys.exit(main())
