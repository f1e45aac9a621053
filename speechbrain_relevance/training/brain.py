"""The ``Brain`` shared by the recipes: front-end, relevance, classifier.

:class:`RelevanceBrain` holds what the DCASE2020 and UrbanSound8k recipes
have in common, so that each recipe only says how its classifier consumes
the representation:

* the representation: ``compute_features`` (any SpeechBrain front-end
  giving ``[batch, frames, bands]``), then either the multi-head
  ``relevance`` lobe (weighting, skip-add, per-head min-max scaling) or,
  without it, min-max scaling of the whole representation (the paper's
  baselines), returned as one tensor per head;
* the learning-rate schedule stepped after every optimiser step with
  fractional epochs (:mod:`speechbrain_relevance.training.schedulers`),
  checkpointed with everything else;
* mixup-aware losses, validation and test reports (overall accuracy, log
  loss, class-wise and per-group accuracy, confusion matrix) written as
  markdown and JSON by the main process, complete under DDP;
* DDP on CPU (gloo) through :class:`SyncBatchNormControl`.

The data pipeline must provide ``id``, ``sig`` (waveforms), ``label``
(class index tensor) and ``group`` (e.g. the recording device).

Authors
 * speechbrain-relevance developers
"""

import logging
import os

import speechbrain as sb
import torch
import torch.nn.functional as F
from speechbrain.utils.distributed import if_main_process

from speechbrain_relevance.augment import mixup, mixup_loss
from speechbrain_relevance.cli import ConfigError
from speechbrain_relevance.lobes.normalization import normalize_features
from speechbrain_relevance.training.checkpoints import (
    RandomState,
    load_checkpoint_file,
)
from speechbrain_relevance.training.distributed import SyncBatchNormControl
from speechbrain_relevance.training.metrics import ClassificationReport

logger = logging.getLogger(__name__)


class RelevanceBrain(SyncBatchNormControl, sb.Brain):
    """Brain for front-end + (relevance) + classifier recipes.

    Subclasses implement :meth:`classify`, mapping the list of per-head
    representations to logits. Expected hyperparameters: ``labels``
    (class names in index order), ``epoch_counter``, ``checkpointer``,
    ``train_logger``, ``output_folder``; optional ``lr_scheduler``
    (an ``EpochLRScheduler``), ``mixup_alpha``, ``abbreviations`` (label
    to table column), ``relevance`` (a ``MultiHeadRelevance``),
    ``feature_norm`` (``"minmax"``, the default per-example min-max
    scaling of the paper; ``"sentence"``, per-example and per-band
    standardisation over the real frames with SpeechBrain's
    ``InputNormalization``; or any module called as ``norm(feats,
    lens)``; applied after relevance weighting when both are used),
    ``frontend_lr`` (learning rate of the
    front-end's own parameter group).
    """

    #: Only the relevance lobe knows its heads; DDP hides the module.
    def head_bands(self, n_bands):
        """Return the band indices of each head.

        Arguments
        ---------
        n_bands : int
            Bands of the representation (used without relevance).

        Returns
        -------
        list of list of int
            Band indices per head.
        """
        relevance = getattr(self.hparams, "relevance", None)
        if relevance is None or "relevance" not in self.modules:
            return [list(range(n_bands))]
        return relevance.head_bands()

    def representation(self, wavs, lens, return_masks=False):
        """Front-end, relevance weighting and scaling, split per head.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` waveforms.
        lens : torch.Tensor
            Relative lengths.
        return_masks : bool
            Also return the relevance masks (None without relevance).

        Returns
        -------
        list of torch.Tensor
            ``[batch, frames, bands_h]`` per head, scaled to [0, 1].
        torch.Tensor or None
            ``[batch, frames, bands]`` masks, with ``return_masks``.
        """
        feats = self.modules.compute_features(wavs)
        masks = None
        norm = getattr(self.hparams, "feature_norm", None)
        if "relevance" in self.modules:
            # The relevance lobe min-max scales each head itself.
            feats, masks = self.modules.relevance(
                feats, lens, return_masks=True
            )
            if norm not in (None, "minmax"):
                feats = normalize_features(feats, lens, norm)
        else:
            feats = normalize_features(feats, lens, norm)
        heads = [
            feats.index_select(
                2, torch.tensor(idx, device=feats.device)
            )
            for idx in self.head_bands(feats.shape[2])
        ]
        if return_masks:
            return heads, masks
        return heads

    def classify(self, heads, lens, stage):
        """Map the per-head representations to logits.

        By default the heads are concatenated along the band axis (in head
        order), mixed up in training if ``mixup_alpha`` is set, and given
        to ``modules.classifier(x, lens)``, a ``[batch, frames, bands]``
        classifier. Recipes with other classifier inputs override this.

        Arguments
        ---------
        heads : list of torch.Tensor
            ``[batch, frames, bands_h]`` per head.
        lens : torch.Tensor
            Relative lengths.
        stage : sb.Stage
            Training, validation or test.

        Returns
        -------
        torch.Tensor
            ``[batch, n_classes]`` logits.
        """
        x = torch.cat(heads, dim=2)
        x = self.mix(x, self._labels, stage)
        return self.modules.classifier(x, lens)

    def mix(self, x, labels, stage):
        """Apply mixup to classifier inputs in training (if configured).

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, ...]`` classifier input.
        labels : torch.Tensor
            ``[batch]`` class indices.
        stage : sb.Stage
            Mixup is applied in training only.

        Returns
        -------
        torch.Tensor
            The (mixed) input.
        """
        alpha = getattr(self.hparams, "mixup_alpha", 0.0) or 0.0
        self._mixup = None
        if stage != sb.Stage.TRAIN or alpha <= 0:
            return x
        x, y_a, y_b, lam = mixup(x, labels, alpha=alpha)
        self._mixup = (y_a, y_b, lam)
        return x

    def compute_forward(self, batch, stage):
        """Waveforms to logits."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        self._labels = batch.label.data.view(-1)
        heads = self.representation(wavs, lens)
        return self.classify(heads, lens, stage)

    def compute_objectives(self, predictions, batch, stage):
        """Cross-entropy (mixed under mixup); collects eval predictions."""
        labels = self._labels
        mixed = getattr(self, "_mixup", None)
        if stage == sb.Stage.TRAIN and mixed is not None:
            y_a, y_b, lam = mixed
            return mixup_loss(predictions, y_a, y_b, lam)
        loss = F.cross_entropy(predictions, labels)
        if stage != sb.Stage.TRAIN:
            self.report.append(
                batch.id, predictions.float(), labels, groups=batch.group
            )
        return loss

    def init_optimizers(self):
        """Build the optimizer, with the front-end in its own group.

        With ``frontend_lr`` set, the trainable parameters of
        ``compute_features`` get that learning rate and everything else
        ``opt_class``'s own: SincNet's remedy for learnable filters that
        hardly move at the classifier's learning rate. The learning-rate
        schedulers scale every group from its own maximum, so the ratio
        between the groups is kept (except near a
        ``WarmRestartsScheduler``'s ``eta_min``, one floor for all groups).
        """
        frontend_lr = getattr(self.hparams, "frontend_lr", None)
        if frontend_lr is None or self.opt_class is None:
            return super().init_optimizers()
        if "compute_features" not in self.modules:
            raise ValueError(
                "frontend_lr is set but there is no compute_features "
                "module to give it to"
            )
        front = [
            p
            for p in self.modules.compute_features.parameters()
            if p.requires_grad
        ]
        front_ids = {id(p) for p in front}
        rest = [
            p
            for p in self.modules.parameters()
            if p.requires_grad and id(p) not in front_ids
        ]
        groups = [{"params": rest}]
        if front:
            groups.append({"params": front, "lr": float(frontend_lr)})
        self.optimizer = self.opt_class(groups)
        self.optimizers_dict = {"opt_class": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    def on_fit_start(self):
        """Checkpoint the random generators too, then recover."""
        if self.checkpointer is not None and (
            "random_state" not in self.checkpointer.recoverables
        ):
            self.random_state = RandomState()
            # Optional: checkpoints written before it existed still load.
            self.checkpointer.add_recoverable(
                "random_state", self.random_state, optional_load=True
            )
        super().on_fit_start()

    def fit_batch(self, batch):
        """Train on one batch (after an intra-epoch resume's RNG state)."""
        random_state = getattr(self, "random_state", None)
        if random_state is not None:
            random_state.apply_pending()
        return super().fit_batch(batch)

    def make_dataloader(
        self, dataset, stage, ckpt_prefix="dataloader-", **loader_kwargs
    ):
        """Build a loader; remembers the training loader's length."""
        loader = super().make_dataloader(
            dataset, stage, ckpt_prefix=ckpt_prefix, **loader_kwargs
        )
        if stage == sb.Stage.TRAIN:
            self.n_train_batches = len(loader)
        return loader

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """Step the learning rate after every optimiser step."""
        scheduler = getattr(self.hparams, "lr_scheduler", None)
        if scheduler is None or not should_step:
            return
        epoch = self.hparams.epoch_counter.current - 1
        n_batches = max(1, getattr(self, "n_train_batches", 1))
        scheduler.step(
            self.optimizer,
            epoch=epoch,
            batch_index=min(self.step, n_batches),
            n_batches=n_batches,
        )

    def on_stage_start(self, stage, epoch=None):
        """Fresh report for validation and test."""
        if stage != sb.Stage.TRAIN:
            self.report = ClassificationReport(
                labels=self.hparams.labels,
                abbreviations=getattr(self.hparams, "abbreviations", None),
            )

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log, checkpoint and write the reports."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss}
            return
        # All processes take part in gathering; only the main one writes.
        self.report.gather()
        summary = self.report.summarize()
        stats = {
            "loss": stage_loss,
            "acc": summary["accuracy"],
            "log_loss": summary["log_loss"],
        }
        if stage == sb.Stage.VALID:
            lr = self.optimizer.param_groups[0]["lr"]
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": lr},
                train_stats=self.train_stats,
                valid_stats=stats,
            )
            self.checkpointer.save_and_keep_only(
                meta={"acc": stats["acc"], "epoch": epoch},
                max_keys=["acc"],
                num_to_keep=getattr(self.hparams, "ckpt_num_to_keep", 1),
            )
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
            )
            if if_main_process():
                prefix = getattr(self, "results_prefix", "test_results")
                self.report.write(
                    self.hparams.output_folder,
                    prefix=prefix,
                    name=getattr(self.hparams, "system_name", "System"),
                )
                logger.info(
                    "Wrote %s.md/.json to %s",
                    prefix,
                    self.hparams.output_folder,
                )
        self.last_summary = summary


def find_module_checkpoint(path, key="compute_features", max_key="acc"):
    """Locate a module's saved parameters from an earlier recipe run.

    Arguments
    ---------
    path : str
        A ``<key>.ckpt`` file, a ``CKPT+...`` folder, a run's save folder
        or its output folder (the best checkpoint by ``max_key`` is used).
    key : str
        Name of the module in the checkpoint.
    max_key : str
        Meta key that ranks checkpoints.

    Returns
    -------
    str
        Path of the ``<key>.ckpt`` file.

    Example
    -------
    >>> find_module_checkpoint("/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: No checkpoint of 'compute_features' found at ...
    """
    if os.path.isfile(path):
        return path
    direct = os.path.join(path, f"{key}.ckpt")
    if os.path.isfile(direct):
        return direct
    for save_dir in (path, os.path.join(path, "save")):
        if not os.path.isdir(save_dir):
            continue
        ckpter = sb.utils.checkpoints.Checkpointer(save_dir)
        ckpt = ckpter.find_checkpoint(max_key=max_key)
        if ckpt is not None:
            candidate = os.path.join(ckpt.path, f"{key}.ckpt")
            if os.path.isfile(candidate):
                return candidate
    raise FileNotFoundError(
        f"No checkpoint of {key!r} found at {path} (give a {key}.ckpt "
        "file, a CKPT+ folder, or a run's output or save folder)"
    )


def load_frozen(module, path, key="compute_features"):
    """Load a module's parameters from an earlier run and freeze them.

    The two-stage alternative to joint training: a filterbank learnt in
    one run is reused, fixed, in the next.

    Arguments
    ---------
    module : torch.nn.Module
        The module to load into.
    path : str
        Anything :func:`find_module_checkpoint` accepts.
    key : str
        Name of the module in the checkpoint.

    Returns
    -------
    str
        The checkpoint file that was loaded.
    """
    ckpt = find_module_checkpoint(path, key)
    state = load_checkpoint_file(ckpt)
    module.load_state_dict(state)
    for p in module.parameters():
        p.requires_grad_(False)
    if hasattr(module, "freeze"):
        module.freeze = True
    logger.info("Loaded and froze %s from %s", key, ckpt)
    return ckpt


def check_batches(n_clips, loader_opts, split="train"):
    """Refuse a loader that would give no batch (and so train no step).

    With ``drop_last``, a batch size above the number of clips (per
    process under DDP) yields zero batches: training would log a loss of 0
    and test an untrained model.

    Arguments
    ---------
    n_clips : int
        Clips in the split.
    loader_opts : dict
        The split's data loader options (``batch_size``, ``drop_last``).
    split : str
        Name of the split, for the message.

    Returns
    -------
    int
        Batches per epoch on each process.

    Example
    -------
    >>> check_batches(10, {"batch_size": 4, "drop_last": True})
    2
    >>> check_batches(3, {"batch_size": 4, "drop_last": True})
    Traceback (most recent call last):
    ...
    speechbrain_relevance.cli.ConfigError: batch_size 4 is larger than the 3 \
train clip(s)...
    """
    batch_size = int(loader_opts.get("batch_size", 1))
    world = (
        torch.distributed.get_world_size()
        if torch.distributed.is_available()
        and torch.distributed.is_initialized()
        else 1
    )
    per_process = n_clips // world if world > 1 else n_clips
    if loader_opts.get("drop_last", False):
        batches = per_process // batch_size
    else:
        batches = -(-per_process // batch_size)
    if batches == 0:
        where = f" per process ({world} processes)" if world > 1 else ""
        raise ConfigError(
            f"batch_size {batch_size} is larger than the {per_process} "
            f"{split} clip(s){where}, so with drop_last no batch and no "
            "training step would run: lower --batch_size or use more data"
        )
    return batches


def fit_and_test(
    brain_class,
    hparams,
    run_opts,
    datasets,
    output_folder=None,
    report_valid=False,
):
    """Train on ``train``/``valid`` and test the best checkpoint.

    The end of every recipe's ``train.py``: optionally load and freeze a
    filterbank from an earlier run (``pretrained_filterbank``), build the
    Brain, fit, then evaluate the checkpoint with the best validation
    accuracy on ``test``, writing ``test_results.md``/``.json``.

    Arguments
    ---------
    brain_class : type
        A :class:`RelevanceBrain` subclass.
    hparams : dict
        Loaded hyperparameters (``modules``, ``opt_class``,
        ``checkpointer``, ``epoch_counter``, loader options, ...).
    run_opts : dict
        SpeechBrain run options.
    datasets : dict
        ``train``, ``valid`` and ``test`` datasets.
    output_folder : str, optional
        Where the reports go, if not ``hparams["output_folder"]`` (e.g. a
        cross-validation fold's folder).
    report_valid : bool
        Also evaluate the selected checkpoint on ``valid`` and write
        ``valid_results.md``/``.json`` (before the test results), so that
        configurations can be compared on validation data.

    Returns
    -------
    RelevanceBrain
        The trained Brain.
    """
    if hparams.get("pretrained_filterbank"):
        load_frozen(
            hparams["compute_features"], hparams["pretrained_filterbank"]
        )
    if output_folder is not None:
        hparams = dict(hparams, output_folder=output_folder)
    check_batches(len(datasets["train"]), hparams["train_dataloader_opts"])
    brain = brain_class(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    if report_valid:
        brain.results_prefix = "valid_results"
        brain.evaluate(
            datasets["valid"],
            max_key="acc",
            test_loader_kwargs=hparams["valid_dataloader_opts"],
        )
        brain.valid_summary = brain.last_summary
    brain.results_prefix = "test_results"
    brain.evaluate(
        datasets["test"],
        max_key="acc",
        test_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    return brain
