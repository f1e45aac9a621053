#!/usr/bin/env python3
r"""DCASE2020 Task 1A acoustic scene classification with learnable front-ends.

Front-end (log-mel, SincNet or Cos-Gauss filterbank), optional multi-head
relevance weighting, per-head min-max scaling, valid-mode deltas,
SpecAugment, random crop, mixup and the FCN classifier, trained jointly.

To run::

    python train.py hparams/relevance_2head.yaml \\
        --data_folder=/path/to/TAU-urban-acoustic-scenes-2020-mobile-development

Data-parallel::

    torchrun --standalone --nproc_per_node=2 train.py \\
        hparams/relevance_2head.yaml --data_folder=... \\
        --distributed_backend=gloo    # nccl on GPUs

Authors
 * speechbrain-relevance developers
"""

import logging
import os
import sys

import speechbrain as sb

from speechbrain_relevance.augment import random_crop, spec_augment
from speechbrain_relevance.cli import run_main
from speechbrain_relevance.data.manifests import build_datasets
from speechbrain_relevance.pipeline import clip_policy_of
from speechbrain_relevance.training.brain import (
    RelevanceBrain,
    fit_and_test,
    load_recipe,
)
from speechbrain_relevance.training.distributed import run_on_main

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare_dcase2020 import prepare_dcase2020  # noqa: E402

logger = logging.getLogger(__name__)


class SceneBrain(RelevanceBrain):
    """FCN on ``[x, delta, delta-delta]`` of each head, heads concatenated.

    Per head: valid-mode deltas (after the skip-add and scaling), then in
    training SpecAugment (aligned across heads and channels, or not) and a
    random crop with the same start for all heads; then the heads are
    concatenated along the band axis and mixed up. The FCN's input (the
    deltas per head) is the yaml pipeline's ``classifier_input``.
    """

    def augment_representation(self, heads, lens, stage):
        """SpecAugment and a random crop of the deltas, in training."""
        if stage != sb.Stage.TRAIN:
            return heads
        xs = spec_augment(
            heads,
            freq_mask_max=self.hparams.freq_mask_max,
            time_mask_max=self.hparams.time_mask_max,
            aligned=self.hparams.aligned_specaug,
            freq_positions=self.hparams.specaug_freq_positions,
        )
        return random_crop(xs, n_frames=self.hparams.crop_frames)


def dataio_prep(hparams, manifests):
    """Build the train/valid/test datasets from the JSON manifests."""
    policy = clip_policy_of(hparams)

    def load_clip(wav):
        # The pipeline's clip policy, as at inference. The data
        # preparation already rejected other rates and channel counts;
        # strict keeps a changed manifest from slipping through.
        return policy.load(wav, strict=True)

    return build_datasets(
        manifests,
        load_clip,
        label_key="scene",
        labels=hparams["labels"],
        group_key="device",
        empty_hints={
            "valid": "With few recording locations per scene no "
            "location-disjoint validation split exists: use more data or "
            "raise --valid_locations_fraction (0 means no validation, "
            "which training needs to select its checkpoint).",
        },
    )


def prepare_manifests(hparams):
    """Run data preparation (and offline augmentation) on the main process."""
    manifest_folder = hparams["manifest_folder"]
    run_on_main(
        prepare_dcase2020,
        stage="data preparation (main process)",
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": manifest_folder,
            "valid_locations_fraction": hparams["valid_locations_fraction"],
            "seed": hparams["seed"],
            "expected_sample_rate": hparams["sample_rate"],
            "skip_bad_files": hparams["skip_bad_files"],
            "check_audio": hparams["check_audio"],
        },
    )
    manifests = {
        split: os.path.join(manifest_folder, f"{split}.json")
        for split in ("train", "valid", "test")
    }
    if hparams["audio_augmentation"]:
        from augment_dcase2020 import augment_manifest, merge_manifests

        aug_folder = hparams["augment_folder"]
        merged = os.path.join(aug_folder, "train_with_augmented.json")
        run_on_main(
            augment_manifest,
            stage="offline augmentation (main process)",
            kwargs={
                "train_manifest": manifests["train"],
                "out_folder": aug_folder,
                "sample_rate": hparams["sample_rate"],
                "copies": hparams["augment_copies"],
                "methods": hparams["augment_methods"],
                "seed": hparams["seed"],
            },
        )
        run_on_main(
            merge_manifests,
            stage="offline augmentation (main process)",
            args=[
                [
                    manifests["train"],
                    os.path.join(aug_folder, "augmented.json"),
                ],
                merged,
            ],
        )
        manifests["train"] = merged
    return manifests


def main(argv):
    """Prepare data, train, evaluate on the test split."""
    # Checked command line and yaml; under torchrun, the process group.
    hparams_file, run_opts, overrides, hparams = load_recipe(argv)

    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    manifests = prepare_manifests(hparams)
    datasets = dataio_prep(hparams, manifests)

    return fit_and_test(SceneBrain, hparams, run_opts, datasets)


if __name__ == "__main__":
    # Bad data or options end in one line naming the file or key.
    run_main(main)
