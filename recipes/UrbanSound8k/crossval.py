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

Example
-------
>>> opts, train_args = parse_args(["h.yaml", "--folds", "3", "1", "--lr=0.1"])
>>> opts.folds, train_args
([3, 1], ['--lr=0.1'])
>>> fold_command(TRAIN_SCRIPT, "h.yaml", 3, train_args)[-2:]
['--lr=0.1', '--test_fold=3']

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
from prepare_urbansound8k import URBANSOUND_N_FOLDS  # noqa: E402

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

# The recipe's entry points are the shared driver's, bound to its protocol;
# fold_command, to_markdown and write_results are the driver's functions
# (give them TRAIN_SCRIPT, or **CROSSVAL.markdown_options()).
parse_args = CROSSVAL.parse_args
run_crossval = CROSSVAL.run
main = CROSSVAL.main


if __name__ == "__main__":
    sys.exit(main())
