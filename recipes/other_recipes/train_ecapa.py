#!/usr/bin/env python3
"""Generic SpeechBrain embedding classifier (ECAPA-TDNN, x-vector, ...).

The standard SpeechBrain classification pipeline::

    wavs -> compute_features -> mean_var_norm -> embedding_model
         -> classifier -> compute_cost (additive angular margin)

trained on JSON manifests whose entries hold ``"wav"`` (a path; ``{data_root}``
is replaced by ``data_folder``) and ``"class"`` (a label), for example the
UrbanSound8k manifests of ``recipes/UrbanSound8k/prepare_urbansound8k.py``.
The front-end is whatever the yaml's ``compute_features`` builds:
SpeechBrain's ``Fbank`` (``ecapa_fbank.yaml``), the Cos-Gauss filterbank
(``ecapa_cosgauss.yaml``) or the Cos-Gauss filterbank with relevance
weighting (the commented block of ``ecapa_cosgauss.yaml``).

To run::

    python train_ecapa.py ecapa_cosgauss.yaml --data_folder=<manifests>

or, on several GPUs or processes::

    torchrun --standalone --nproc_per_node=2 train_ecapa.py \
        ecapa_cosgauss.yaml --data_folder=<manifests>

then export the best checkpoint for ``EncoderClassifier``::

    sb-relevance-export results/ecapa_tdnn/1234 <model folder>

Authors
 * speechbrain-relevance developers
"""

import inspect
import json
import os
import sys

import speechbrain as sb

from speechbrain_relevance.cli import run_main
from speechbrain_relevance.data.audio import load_audio
from speechbrain_relevance.training.brain import load_recipe


def accepts_lengths(module):
    """Whether ``module.forward`` takes relative lengths after the input.

    SpeechBrain's ``Fbank`` is called as ``compute_features(wavs)``; the
    learnable front-ends of this package also take ``wav_lens`` so that
    padding stays out of their context windows and statistics. Checking
    the signature keeps one training script for both.

    Arguments
    ---------
    module : torch.nn.Module
        The ``compute_features`` module.

    Returns
    -------
    bool
        True if ``forward`` has a second positional parameter.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> from speechbrain_relevance.lobes import CosGaussFilterbank
    >>> accepts_lengths(Fbank()), accepts_lengths(CosGaussFilterbank())
    (False, True)
    """
    params = list(inspect.signature(module.forward).parameters.values())
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return len(positional) >= 2


class EmbeddingClassifierBrain(sb.core.Brain):
    """Front-end, embedding model and classifier trained with AAM softmax.

    The forward pass mirrors ``EncoderClassifier.classify_batch``, so a
    model exported with ``sb-relevance-export`` predicts at inference what it
    predicted in validation.
    """

    def on_fit_start(self):
        """Find out once whether the front-end takes lengths."""
        super().on_fit_start()
        self.features_take_lengths = accepts_lengths(
            self.modules.compute_features
        )

    def compute_forward(self, batch, stage):
        """Waveforms to class scores.

        Arguments
        ---------
        batch : PaddedBatch
            Holds ``sig`` (waveforms and relative lengths) and the labels.
        stage : sb.Stage
            TRAIN, VALID or TEST.

        Returns
        -------
        tuple of torch.Tensor
            ``[batch, 1, n_classes]`` cosine scores and the relative
            lengths (both grown by the augmented copies in training).
        """
        batch = batch.to(self.device)
        wavs, lens = batch.sig

        if stage == sb.Stage.TRAIN and self.hparams.augment:
            wavs, lens = self.hparams.wav_augment(wavs, lens)

        if getattr(self, "features_take_lengths", False):
            feats = self.modules.compute_features(wavs, lens)
        else:
            feats = self.modules.compute_features(wavs)
        feats = self.modules.mean_var_norm(feats, lens)
        embeddings = self.modules.embedding_model(feats, lens)
        outputs = self.modules.classifier(embeddings)
        # Some classifiers return [batch, n_classes]; the loss and the
        # error metric expect SpeechBrain's [batch, 1, n_classes].
        if outputs.dim() == 2:
            outputs = outputs.unsqueeze(1)
        return outputs, lens

    def compute_objectives(self, predictions, batch, stage):
        """AAM-softmax loss; classification error outside training.

        Arguments
        ---------
        predictions : tuple of torch.Tensor
            What :meth:`compute_forward` returned.
        batch : PaddedBatch
            The batch.
        stage : sb.Stage
            TRAIN, VALID or TEST.

        Returns
        -------
        torch.Tensor
            The loss.
        """
        predictions, lens = predictions
        labels, _ = batch.class_encoded
        if stage == sb.Stage.TRAIN and self.hparams.augment:
            # The augmenter appended augmented copies to the batch.
            labels = self.hparams.wav_augment.replicate_labels(labels)
        loss = self.hparams.compute_cost(predictions, labels, lens)
        if stage != sb.Stage.TRAIN:
            self.error_metrics.append(batch.id, predictions, labels, lens)
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Reset the error statistics.

        Arguments
        ---------
        stage : sb.Stage
            TRAIN, VALID or TEST.
        epoch : int, optional
            The current epoch.
        """
        if stage != sb.Stage.TRAIN:
            self.error_metrics = self.hparams.error_stats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log, anneal the learning rate, checkpoint on validation.

        Arguments
        ---------
        stage : sb.Stage
            TRAIN, VALID or TEST.
        stage_loss : float
            Average loss of the stage.
        epoch : int, optional
            The current epoch.
        """
        stats = {"loss": stage_loss}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        stats["error"] = self.error_metrics.summarize("average")
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(epoch)
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": old_lr},
                train_stats=self.train_stats,
                valid_stats=stats,
            )
            # The exporter picks the checkpoint with the lowest error.
            self.checkpointer.save_and_keep_only(
                meta={"error": stats["error"]}, min_keys=["error"]
            )
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
            )
            self.write_test_results(stats)

    def write_test_results(self, stats):
        """Save the test metrics as ``<output_folder>/test_results.json``.

        The exporter (``sb-relevance-export``) puts them into the model
        card, as it does for the project's other recipes. Under DDP each
        process measured its share of the test set; the main process's
        share is written.

        Arguments
        ---------
        stats : dict
            ``loss`` and ``error`` of the test stage.
        """
        results = {
            "n": len(self.error_metrics.ids),
            "accuracy": 1.0 - float(stats["error"]),
            "error": float(stats["error"]),
            "loss": float(stats["loss"]),
        }
        if sb.utils.distributed.if_main_process():
            path = os.path.join(
                self.hparams.output_folder, "test_results.json"
            )
            with open(path, "w", encoding="utf-8") as fout:
                json.dump(results, fout, indent=1)


def dataio_prep(hparams):
    """Build the datasets and fit the label encoder.

    Arguments
    ---------
    hparams : dict
        Loaded hyperparameters.

    Returns
    -------
    dict
        ``"train"``, ``"valid"`` and ``"test"`` datasets.
    """
    label_encoder = hparams["label_encoder"]

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        # Resample and downmix here: manifests such as UrbanSound8k's mix
        # sample rates (8-96 kHz) and channel counts.
        return load_audio(wav, sample_rate=hparams["sample_rate"])

    @sb.utils.data_pipeline.takes("class")
    @sb.utils.data_pipeline.provides("class", "class_encoded")
    def label_pipeline(label):
        yield label
        yield label_encoder.encode_label_torch(label)

    datasets = {}
    for split in ("train", "valid", "test"):
        datasets[split] = sb.dataio.dataset.DynamicItemDataset.from_json(
            json_path=hparams[f"{split}_annotation"],
            replacements={"data_root": hparams["data_folder"]},
            dynamic_items=[audio_pipeline, label_pipeline],
            output_keys=["id", "sig", "class_encoded"],
        )

    # The encoder is fitted on the training labels and saved next to the
    # checkpoints; the exporter ships it with the model. load_or_create
    # is DDP-safe: the main process writes the file, the others read it.
    label_encoder.load_or_create(
        path=hparams["label_encoder_file"],
        from_didatasets=[datasets["train"]],
        output_key="class",
    )
    n_classes = len(label_encoder)
    if n_classes != hparams["out_n_neurons"]:
        raise ValueError(
            f"The training manifest has {n_classes} classes but the "
            f"classifier has out_n_neurons={hparams['out_n_neurons']}; "
            f"set --out_n_neurons={n_classes}"
        )
    label_encoder.expect_len(n_classes)
    return datasets


def main(argv=None):
    """Train, keep the best checkpoint, evaluate it on the test manifest.

    Arguments
    ---------
    argv : list of str, optional
        Command line: hyperparameter file, then overrides and run options
        (default ``sys.argv[1:]``).

    Returns
    -------
    EmbeddingClassifierBrain
        The trained brain.
    """
    argv = sys.argv[1:] if argv is None else argv
    # The checked command line and yaml; under torchrun, the process
    # group is joined (with the yaml's ddp_timeout_s) before anything
    # collective, as SpeechBrain's recipes do; a no-op in one process.
    hparams_file, run_opts, overrides, hparams = load_recipe(argv)

    # Saves the resolved hyperparameters as <output_folder>/hyperparams.yaml,
    # which the exporter reads the model definition from.
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    datasets = dataio_prep(hparams)

    brain = EmbeddingClassifierBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.fit(
        epoch_counter=brain.hparams.epoch_counter,
        train_set=datasets["train"],
        valid_set=datasets["valid"],
        train_loader_kwargs=hparams["dataloader_options"],
        valid_loader_kwargs=hparams["dataloader_options"],
    )
    brain.evaluate(
        test_set=datasets["test"],
        min_key="error",
        test_loader_kwargs=hparams["dataloader_options"],
    )
    return brain


if __name__ == "__main__":
    # Bad data or options end in one line naming the file or key.
    run_main(main)
