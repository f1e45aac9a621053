#!/usr/bin/env python3
r"""UrbanSound8k sound classification with learnable front-ends, one fold.

Front-end (log-mel or Cos-Gauss filterbank), optional multi-head relevance
weighting, per-head min-max scaling, then the heads concatenated along the
band axis into the CNN-LSTM. Trains on the folds other than the test fold
and its validation fold and evaluates on the test fold, with one decision
per clip. ``crossval.py`` runs all ten folds and aggregates them.

With ``patch_frames`` set (the authors' scripts use 51-frame patches), the
CNN-LSTM is trained on patches cut from each clip (every patch carries its
clip's label) and, in evaluation, the patch posteriors of a clip are
combined into one clip decision; both accuracies are reported
(``test_results`` per clip, ``test_results_patches`` per patch).

To run::

    python train.py hparams/relevance_2head.yaml \\
        --data_folder=/path/to/UrbanSound8K --test_fold=1

Data-parallel::

    torchrun --standalone --nproc_per_node=2 train.py \\
        hparams/relevance_2head.yaml --data_folder=... --test_fold=1 \\
        --distributed_backend=gloo    # nccl on GPUs

Authors
 * speechbrain-relevance developers
"""

import logging
import os
import sys

import speechbrain as sb
import torch
import torch.nn.functional as F
from speechbrain.utils.distributed import if_main_process

from speechbrain_relevance.augment import mixup_loss
from speechbrain_relevance.cli import run_main
from speechbrain_relevance.data.manifests import build_datasets
from speechbrain_relevance.pipeline import clip_policy_of
from speechbrain_relevance.training.brain import (
    RelevanceBrain,
    fit_and_test,
    load_recipe,
)
from speechbrain_relevance.training.distributed import run_on_main
from speechbrain_relevance.training.metrics import ClassificationReport

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare_urbansound8k import (  # noqa: E402
    N_FOLDS,
    check_folds,
    prepare_urbansound8k,
)

logger = logging.getLogger(__name__)

#: Readable group names for the manifest's ``salience`` field.
SALIENCE_NAMES = {1: "foreground", 2: "background"}


def default_folds(test_fold, valid_folds=None, train_folds=None):
    """Choose the folds of one cross-validation round.

    By default the validation fold is the fold before the test fold
    (cyclically: test 1 -> valid 10) and the training folds are all the
    others, so that over the ten rounds every fold is tested once and
    validates once. Folds are the official predefined ones, never
    reshuffled.

    Arguments
    ---------
    test_fold : int
        The fold to test on (1-10).
    valid_folds : int or list of int, optional
        Validation fold(s); None for the default.
    train_folds : int or list of int, optional
        Training folds; None for all folds not used for test or
        validation.

    Returns
    -------
    dict
        ``{"train": [...], "valid": [...], "test": [...]}``, sorted.

    Example
    -------
    >>> default_folds(1)
    {'train': [2, 3, 4, 5, 6, 7, 8, 9], 'valid': [10], 'test': [1]}
    >>> default_folds(5)["valid"]
    [4]
    >>> default_folds(5, valid_folds=[9, 10])["train"]
    [1, 2, 3, 4, 6, 7, 8]
    >>> default_folds(3, valid_folds=3)
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: folds must be disjoint: fold 3 \
is in valid and test
    """
    if valid_folds is None:
        valid_folds = [(int(test_fold) - 2) % N_FOLDS + 1]
    if train_folds is None:
        held_out = set(_as_list(valid_folds)) | set(_as_list(test_fold))
        train_folds = [
            f for f in range(1, N_FOLDS + 1) if f not in held_out
        ]
    # check_folds (the data preparation's) rejects overlaps, folds out of
    # 1..10 and empty splits with messages naming the split.
    return check_folds(train_folds, valid_folds, test_fold)


def _as_list(folds):
    """Return fold(s) as a list, digit strings as ints (others as is)."""
    if isinstance(folds, (list, tuple)):
        return [int(f) if str(f).strip().isdigit() else f for f in folds]
    return [int(folds)] if str(folds).strip().isdigit() else [folds]


class UrbanSoundBrain(RelevanceBrain):
    """CNN-LSTM on the concatenated heads, per clip or per patch.

    The per-head ``[batch, frames, bands_h]`` tensors are concatenated along
    the band axis (in head order) and fed to the CNN-LSTM. Without
    ``patch_frames`` the whole clip is one sequence and the training target
    is the clip's class. With ``patch_frames`` every patch is a training
    example; in evaluation the patch outputs are collected in a patch-level
    report and combined (the pipeline's ``patch_aggregation``) into clip
    posteriors for the clip-level report, the one that selects checkpoints
    and is written as ``test_results``. The pipeline cuts the patches and
    gives the clip of each (``self._owner``); the settings are the
    pipeline's alone (``patch_frames``, ``patch_hop``,
    ``patch_aggregation``).
    """

    def compute_objectives(self, predictions, batch, stage):
        """Patch-level loss and reports in patch mode; else the parent's."""
        if not self.patch_mode:
            return super().compute_objectives(predictions, batch, stage)
        owner = self._owner
        targets = self._labels[owner]
        mixed = getattr(self, "_mixup", None)
        if stage == sb.Stage.TRAIN and mixed is not None:
            return mixup_loss(predictions, *mixed)
        loss = F.cross_entropy(predictions, targets)
        if stage == sb.Stage.TRAIN:
            return loss

        owner_list = owner.tolist()
        groups = list(batch.group)
        # Patch ids must be unique for DDP de-duplication in gather().
        counts = {}
        patch_ids = []
        for b in owner_list:
            patch_ids.append(f"{batch.id[b]}#{counts.get(b, 0)}")
            counts[b] = counts.get(b, 0) + 1
        self.patch_report.append(
            patch_ids,
            predictions.float(),
            targets,
            groups=[groups[b] for b in owner_list],
        )
        order, scores = self.pipeline.aggregate(predictions, owner_list)
        self.report.append(
            [batch.id[b] for b in order],
            scores.float(),
            self._labels[torch.tensor(order, device=owner.device)],
            groups=[groups[b] for b in order],
        )
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Fresh clip-level (and patch-level) reports for evaluation."""
        super().on_stage_start(stage, epoch)
        if stage != sb.Stage.TRAIN and self.patch_mode:
            self.patch_report = ClassificationReport(
                labels=self.hparams.labels,
                abbreviations=getattr(self.hparams, "abbreviations", None),
            )

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log and write the patch-level results, then the clip-level ones.

        The clip-level ``test_results.json`` is written last, so that its
        presence (which ``crossval.py`` takes as "fold done") implies the
        patch-level file is there too.
        """
        if stage != sb.Stage.TRAIN and self.patch_mode:
            # Collective under DDP: every process gathers.
            self.patch_report.gather()
            patch = self.patch_report.summarize()
            stats = {"acc": patch["accuracy"], "log_loss": patch["log_loss"]}
            if stage == sb.Stage.VALID:
                self.hparams.train_logger.log_stats(
                    stats_meta={"epoch": epoch, "level": "patch"},
                    valid_stats=stats,
                )
            else:
                self.hparams.train_logger.log_stats(
                    stats_meta={"level": "patch"}, test_stats=stats
                )
                if if_main_process():
                    prefix = getattr(self, "results_prefix", "test_results")
                    self.patch_report.write(
                        self.hparams.output_folder,
                        prefix=f"{prefix}_patches",
                        name=getattr(self.hparams, "system_name", "System"),
                    )
            self.last_patch_summary = patch
        super().on_stage_end(stage, stage_loss, epoch)


def dataio_prep(hparams, manifests):
    """Build the train/valid/test datasets from the JSON manifests.

    Arguments
    ---------
    hparams : dict
        The loaded hyperparameters.
    manifests : dict
        Split name to manifest path.

    Returns
    -------
    dict
        Split name to ``DynamicItemDataset`` providing ``id``, ``sig``,
        ``label`` and ``group``.
    """
    policy = clip_policy_of(hparams)
    group_by = hparams["group_by"]

    def load_clip(wav):
        # The pipeline's clip policy, as at inference: resampled to
        # 44.1 kHz, downmixed, peak-normalised and padded to the clip
        # duration (the corpus mixes rates, widths and channels).
        return policy.load(wav)

    def group_name(value):
        if group_by == "salience":
            return SALIENCE_NAMES.get(value, str(value))
        return str(value)

    return build_datasets(
        manifests,
        load_clip,
        label_key="class",
        labels=hparams["labels"],
        group_key=group_by,
        group_name=group_name,
    )


def prepare_manifests(hparams):
    """Write this fold's manifests (on the main process only).

    Arguments
    ---------
    hparams : dict
        The loaded hyperparameters.

    Returns
    -------
    dict
        Split name to manifest path.
    """
    folds = default_folds(
        hparams["test_fold"], hparams["valid_folds"], hparams["train_folds"]
    )
    logger.info(
        "Folds: train %s, valid %s, test %s",
        folds["train"], folds["valid"], folds["test"],
    )
    manifest_folder = hparams["manifest_folder"]
    run_on_main(
        prepare_urbansound8k,
        stage="data preparation (main process)",
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": manifest_folder,
            "train_folds": folds["train"],
            "valid_folds": folds["valid"],
            "test_folds": folds["test"],
            "skip_bad_files": hparams["skip_bad_files"],
            "check_audio": hparams["check_audio"],
        },
    )
    return {
        split: os.path.join(manifest_folder, f"{split}.json")
        for split in ("train", "valid", "test")
    }


def main(argv):
    """Prepare the fold's data, train, evaluate on the test fold.

    Arguments
    ---------
    argv : list of str
        Command line: hyperparameter file, then overrides and run options.

    Returns
    -------
    UrbanSoundBrain
        The trained brain (``last_summary`` holds the test results).
    """
    # Checked command line and yaml; under torchrun, the process group.
    hparams_file, run_opts, overrides, hparams = load_recipe(argv)

    fold_folder = hparams["fold_folder"]
    sb.create_experiment_directory(
        experiment_directory=fold_folder,
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    manifests = prepare_manifests(hparams)
    datasets = dataio_prep(hparams, manifests)

    # Each fold's reports belong in the fold's own folder, not in the
    # cross-validation experiment's output folder.
    return fit_and_test(
        UrbanSoundBrain, hparams, run_opts, datasets, output_folder=fold_folder
    )


if __name__ == "__main__":
    # Bad data or options end in one line naming the file or key.
    run_main(main)
