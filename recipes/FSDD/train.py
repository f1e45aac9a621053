#!/usr/bin/env python3
r"""Spoken digit recognition on FSDD with learnable front-ends, one fold.

Real speech: the Free Spoken Digit Dataset (six speakers, 8 kHz). The
front-end (log-mel, Cos-Gauss or SincNet), optional multi-head relevance
weighting and the normalisation give ``[batch, frames, bands]``; the heads
are concatenated along the band axis into a compact CNN. By default one
fold of leave-one-speaker-out cross-validation: test on the held-out
speaker, validate on the next speaker, train on the other four.
``crossval.py`` runs the six folds and aggregates them.

To run::

    python train.py hparams/cosgauss.yaml \\
        --data_folder=/path/to/fsdd --test_fold=theo

The official split (takes 0-4 test, 5-9 validation)::

    python train.py hparams/cosgauss.yaml --data_folder=/path/to/fsdd \\
        --split=official --test_fold=official

Besides ``test_results.md``/``.json`` each fold writes
``valid_results.md``/``.json`` (the selected checkpoint on the validation
speaker): compare configurations on those, never on the test speaker.

Authors
 * speechbrain-relevance developers
"""

import logging
import os
import sys

import speechbrain as sb

from speechbrain_relevance.cli import run_main
from speechbrain_relevance.data.audio import ClipCache
from speechbrain_relevance.data.manifests import build_datasets
from speechbrain_relevance.errors import ConfigError
from speechbrain_relevance.pipeline import clip_policy_of
from speechbrain_relevance.training.brain import (
    RelevanceBrain,
    fit_and_test,
    load_recipe,
)
from speechbrain_relevance.training.distributed import run_on_main

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare_fsdd import prepare_fsdd  # noqa: E402

logger = logging.getLogger(__name__)


class DigitBrain(RelevanceBrain):
    """Front-end, relevance, normalisation and classifier for FSDD.

    The heads are concatenated along the band axis and classified by
    ``modules.classifier`` (:meth:`RelevanceBrain.classify`); the groups of
    the reports are the speakers.
    """


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
        ``label`` and ``group`` (the speaker).
    """
    policy = clip_policy_of(hparams)

    def load_clip(wav):
        # The pipeline's clip policy (as at inference): peak-normalised,
        # cropped to max_duration, NOT padded: the batch pads to its
        # longest clip and the relative lengths tell the front-end and
        # the classifier where each clip ends.
        return policy.load(wav, strict=True)

    if hparams.get("cache_audio_mb") is not None:
        try:
            load_clip = ClipCache(load_clip, hparams["cache_audio_mb"])
        except ConfigError as e:
            raise e.renamed({"max_megabytes": "cache_audio_mb"}) from None

    datasets = build_datasets(
        manifests, load_clip, "digit", hparams["labels"], "speaker"
    )
    # Evaluation batches of clips of similar duration: less padding to
    # compute (training batches are bucketed by ``dynamic_batching``).
    for split in ("valid", "test"):
        if split in datasets:
            ordered = datasets[split].filtered_sorted(sort_key="duration")
            # The sorted view is a new dataset: keep what its groups are.
            ordered.group_key = datasets[split].group_key
            datasets[split] = ordered
    return datasets


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
    split = hparams["split"]
    test_speaker = hparams["test_fold"] if split == "speaker" else None
    manifest_folder = hparams["manifest_folder"]
    run_on_main(
        prepare_fsdd,
        stage="data preparation (main process)",
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": manifest_folder,
            "split": split,
            "test_speaker": test_speaker,
            "valid_speakers": hparams["valid_speakers"],
            "check_audio": hparams["check_audio"],
            "check_cache": hparams.get("audio_check_cache"),
        },
    )
    return {
        name: os.path.join(manifest_folder, f"{name}.json")
        for name in ("train", "valid", "test")
    }


def main(argv):
    """Prepare the fold's data, train, evaluate on valid and test.

    Arguments
    ---------
    argv : list of str
        Command line: hyperparameter file, then overrides and run options.

    Returns
    -------
    DigitBrain
        The trained brain (``last_summary`` holds the test results,
        ``valid_summary`` the validation results).
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
    return fit_and_test(
        DigitBrain,
        hparams,
        run_opts,
        datasets,
        output_folder=fold_folder,
        report_valid=True,
    )


if __name__ == "__main__":
    # Bad data or options end in one line naming the file or key.
    run_main(main)
