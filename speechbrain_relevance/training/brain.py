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

from speechbrain_relevance.augment import mixup, mixup_loss, spec_augment
from speechbrain_relevance.checkpoint_files import (
    find_model_checkpoint,
    load_checkpoint_file,
)
from speechbrain_relevance.cli import load_hparams
from speechbrain_relevance.data.preparation import write_text
from speechbrain_relevance.errors import ConfigError
from speechbrain_relevance.pipeline import (
    MODULE_NAMES,
    StageHooks,
    clip_lengths_differ,
    each_clip,
    pipeline_of,
)
from speechbrain_relevance.training.checkpoints import (
    RandomState,
)
from speechbrain_relevance.training.distributed import (
    SyncBatchNormControl,
    check_same_everywhere,
    init_distributed,
    mark_stage,
)
from speechbrain_relevance.training.metrics import ClassificationReport

logger = logging.getLogger(__name__)

#: Meta key of a checkpoint that averages the last epochs' parameters.
AVERAGED_KEY = "averaged_epochs"


class TrainingHooks(StageHooks):
    """A Brain's training augmentation, between the pipeline's stages.

    Waveform augmentation (:meth:`RelevanceBrain.augment_waveforms`),
    SpecAugment and crop of the heads' classifier inputs
    (:meth:`RelevanceBrain.augment_representation`) and mixup of the
    joined input or its patches (:meth:`RelevanceBrain.mix`); each does
    nothing outside training.

    Arguments
    ---------
    brain : RelevanceBrain
        The Brain (its hyperparameters and the batch's labels).
    stage : speechbrain.Stage
        The stage of the batch.
    """

    def __init__(self, brain, stage):
        self.brain = brain
        self.stage = stage

    def waveforms(self, wavs, lens):
        """Waveform augmentation (``wav_augment``)."""
        return self.brain.augment_waveforms(wavs, lens, self.stage)

    def head_inputs(self, heads, lens):
        """SpecAugment (and a recipe's crop) of every head."""
        return self.brain.augment_representation(heads, lens, self.stage)

    def classifier_input(self, x, owner):
        """Mixup, with each patch's clip label."""
        labels = self.brain._labels
        if owner is not None:
            labels = labels[owner]
        return self.brain.mix(x, labels, self.stage)


class RelevanceBrain(SyncBatchNormControl, sb.Brain):
    """Brain for front-end + (relevance) + classifier recipes.

    The forward is the run's pipeline (:attr:`pipeline`); a recipe
    changes the training augmentation between its stages by overriding
    :meth:`augment_waveforms`, :meth:`augment_representation` or
    :meth:`mix` (see :class:`TrainingHooks`). Expected hyperparameters:
    ``labels`` (class names in index order), ``epoch_counter``,
    ``checkpointer``,
    ``train_logger``, ``output_folder``; optional ``lr_scheduler``
    (an ``EpochLRScheduler``), ``mixup_alpha``, ``abbreviations`` (label
    to table column), ``relevance`` (a ``MultiHeadRelevance``),
    ``feature_norm`` (``"minmax"``, the default per-example min-max
    scaling of the paper; ``"sentence"``, per-example and per-band
    standardisation over the real frames with SpeechBrain's
    ``InputNormalization``; or any module called as ``norm(feats,
    lens)``; applied after relevance weighting when both are used),
    ``frontend_lr`` (learning rate of the
    front-end's own parameter group), ``label_smoothing`` (of the
    training loss only; 0, the default, is plain cross-entropy),
    ``valid_interval`` (validate every
    N-th epoch and the last; see :meth:`validates`).
    """

    @property
    def pipeline(self):
        """The run's :class:`ClassificationPipeline`, on the Brain's modules.

        :func:`~speechbrain_relevance.pipeline.pipeline_of` of the yaml
        (its ``pipeline`` entry, checked against ``modules``, or one built
        from its keys), run through ``self.modules``, which DDP wraps.
        """
        modules = {
            name: self.modules[name]
            for name in MODULE_NAMES
            if name in self.modules
        }
        cached = getattr(self, "_pipeline_cache", None)
        if (
            cached is None
            or cached[0] is not getattr(self.hparams, "pipeline", None)
            or any(cached[1].get(k) is not v for k, v in modules.items())
        ):
            # Checked once per rebuild, not on every call of a batch.
            base = pipeline_of(self.hparams, modules)
            self._pipeline_cache = (
                getattr(self.hparams, "pipeline", None),
                modules,
                base.with_modules(modules),
            )
        return self._pipeline_cache[2]

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
        return self.pipeline.head_bands(n_bands)

    @property
    def patch_mode(self):
        """Whether the classifier works on patches (``patch_frames``)."""
        return self.pipeline.patch_frames is not None

    def augment_waveforms(self, wavs, lens, stage):
        """Apply ``wav_augment`` to training waveforms (if configured).

        ``wav_augment`` is any SpeechBrain waveform augmentation called as
        ``augment(wavs, lens) -> (wavs, lens)``, typically an
        :class:`~speechbrain.augment.augmenter.Augmenter`; when it grows
        the batch (``concat_original``, parallel augmentation) the labels
        follow through its ``replicate_labels``. Validation and test see
        the clips as they are.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` waveforms.
        lens : torch.Tensor
            Relative lengths.
        stage : sb.Stage
            Augmentation runs in training only.

        Returns
        -------
        torch.Tensor
            The (augmented) waveforms.
        torch.Tensor
            Their relative lengths.
        """
        augment = getattr(self.hparams, "wav_augment", None)
        if augment is None or stage != sb.Stage.TRAIN:
            return wavs, lens
        n_clips = wavs.shape[0]
        wavs, lens = augment(wavs, lens)
        if wavs.shape[0] != n_clips:
            self._labels = augment.replicate_labels(self._labels)
        return wavs, lens

    def augment_representation(self, heads, lens, stage):
        """SpecAugment on the per-head representations in training.

        With ``freq_mask_max`` or ``time_mask_max`` in the hyperparameters,
        one band interval and one frame interval of every example are set
        to 0 (the minimum of the scaled features), at the same positions
        in every head (``aligned_specaug``, default True, the paper's best)
        and, for the frames, within each clip's real length.

        Arguments
        ---------
        heads : list of torch.Tensor
            ``[batch, frames, bands_h]`` (or ``[batch, channels, bands_h,
            frames]``) per head.
        lens : torch.Tensor
            Relative lengths.
        stage : sb.Stage
            Masks are drawn in training only.

        Returns
        -------
        list of torch.Tensor
            The (masked) heads, same shapes.
        """
        freq_max = getattr(self.hparams, "freq_mask_max", 0) or 0
        time_max = getattr(self.hparams, "time_mask_max", 0) or 0
        if stage != sb.Stage.TRAIN or (freq_max <= 0 and time_max <= 0):
            return heads
        # spec_augment works on [batch, channels, bands, frames].
        sequence = heads[0].dim() == 3
        masked = spec_augment(
            [h.transpose(1, 2).unsqueeze(1) if sequence else h
             for h in heads],
            freq_mask_max=freq_max,
            time_mask_max=time_max,
            aligned=getattr(self.hparams, "aligned_specaug", True),
            lengths=lens,
        )
        if not sequence:
            return masked
        return [m.squeeze(1).transpose(1, 2) for m in masked]

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
        """Waveforms to logits: the pipeline, augmented in training.

        The pipeline runs its stages with this Brain's training
        augmentation as hooks (:class:`TrainingHooks`). In validation
        and test a batch of clips of different lengths is classified one
        clip at a time: a clip's posteriors then do not depend on its
        batch-mates (in a padded batch the frames at a shorter clip's end
        see the padding) and equal what inference gives for the clip
        alone. With patches the logits are per patch (``self._owner``
        holds the clip of each).
        """
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        self._labels = batch.label.data.view(-1)
        pipeline = self.pipeline
        hooks = TrainingHooks(self, stage)
        if stage != sb.Stage.TRAIN and self.clipwise(lens):
            scores = [
                pipeline.scores(clip, one, hooks)
                for clip, one in each_clip(wavs, lens)
            ]
            self._owner = None
            return torch.cat([s.logits for s in scores])
        scores = pipeline.scores(wavs, lens, hooks)
        self._owner = scores.owner
        return scores.logits

    def clipwise(self, lens):
        """Whether an evaluation batch is classified clip by clip.

        When the clips' lengths differ; recipes whose classifier works on
        several examples per clip (patches) keep whole batches.
        """
        if self.patch_mode:
            return False
        return clip_lengths_differ(lens)

    def compute_objectives(self, predictions, batch, stage):
        """Cross-entropy (mixed under mixup); collects eval predictions.

        ``label_smoothing`` applies to the training loss only, so that
        validation and test losses stay comparable across systems.
        """
        labels = self._labels
        if stage == sb.Stage.TRAIN:
            smoothing = float(getattr(self.hparams, "label_smoothing", 0) or 0)
            mixed = getattr(self, "_mixup", None)
            if mixed is not None:
                y_a, y_b, lam = mixed
                return mixup_loss(
                    predictions, y_a, y_b, lam, label_smoothing=smoothing
                )
            return F.cross_entropy(
                predictions, labels, label_smoothing=smoothing
            )
        self.report.append(
            batch.id, predictions.float(), labels, groups=batch.group
        )
        return F.cross_entropy(predictions, labels)

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
        # Bad values stop the run before training.
        self.valid_interval()
        self.recomputes_batchnorm()
        if self.checkpointer is not None and (
            "random_state" not in self.checkpointer.recoverables
        ):
            self.random_state = RandomState()
            # Optional: checkpoints written before it existed still load.
            self.checkpointer.add_recoverable(
                "random_state", self.random_state, optional_load=True
            )
        mark_stage("resuming from the latest checkpoint (if any)")
        super().on_fit_start()
        scheduler = getattr(self.hparams, "lr_scheduler", None)
        if scheduler is not None and scheduler.last_epoch is None:
            # A fresh run: the first batch already gets the schedule's
            # rate at epoch 0 (a warm-up starts low, not at the peak).
            scheduler.step(self.optimizer, epoch=0)

    def on_evaluate_start(self, max_key=None, min_key=None):
        """Load the checkpoint to evaluate (marks the stage)."""
        mark_stage("loading the checkpoint to evaluate")
        super().on_evaluate_start(max_key=max_key, min_key=min_key)

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
        else:
            # What the report's groups are (the recipe's group key).
            self.group_by = getattr(dataset, "group_key", None)
        return loader

    def on_stage_start(self, stage, epoch=None):
        """Fresh report for validation and test; new batches each epoch.

        A length-bucketing batch sampler (:func:`length_bucket_sampler`)
        draws its batches from its seed and epoch; SpeechBrain only tells
        the epoch to a sampler under DDP, so it is told here.
        """
        if stage == sb.Stage.TRAIN:
            mark_stage(f"epoch {epoch}: training")
            sampler = getattr(self, "train_batch_sampler", None)
            if sampler is not None and epoch is not None:
                sampler.set_epoch(epoch)
            if getattr(self, "distributed_launch", False):
                # A process with a batch more would wait for ever in the
                # gradient averaging of its last batch.
                check_same_everywhere(
                    getattr(self, "n_train_batches", None),
                    "number of training batches",
                )
            return
        if stage == sb.Stage.VALID:
            mark_stage(f"epoch {epoch}: validation")
        else:
            prefix = getattr(self, "results_prefix", "test_results")
            mark_stage(f"evaluation ({prefix})")
        self.report = ClassificationReport(
            labels=self.hparams.labels,
            abbreviations=getattr(self.hparams, "abbreviations", None),
            group_by=getattr(self, "group_by", None),
        )

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
            self._end_epoch(epoch, stats)
        else:
            prefix = getattr(self, "results_prefix", "test_results")
            # The tested model evaluated on the validation set is logged
            # as validation ("valid acc"), not as a second "test acc".
            split = "valid" if prefix.startswith("valid") else "test"
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                **{f"{split}_stats": stats},
            )
            if if_main_process():
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

    def _end_epoch(self, epoch, valid_stats=None):
        """Log the epoch and checkpoint it (validated or not)."""
        # A run killed between this line and its checkpoint repeats the
        # epoch when resumed: its old line goes.
        drop_stale_epoch_lines(self.hparams.train_logger, epoch)
        extra = {} if valid_stats is None else {"valid_stats": valid_stats}
        self.hparams.train_logger.log_stats(
            stats_meta={
                "epoch": epoch,
                "lr": self.optimizer.param_groups[0]["lr"],
            },
            train_stats=self.train_stats,
            **extra,
        )
        meta = {"epoch": epoch}
        if valid_stats is not None:
            meta = {"acc": valid_stats["acc"], "epoch": epoch}
        self._save_epoch(meta)

    def _save_epoch(self, meta):
        """Write an end-of-epoch checkpoint and drop the ones not needed."""
        mark_stage(f"epoch {meta.get('epoch')}: saving its checkpoint")
        if self.n_averaged() > 1:
            # The last epochs are averaged at the end: keep them all.
            self.checkpointer.save_and_keep_only(
                meta=meta,
                num_to_keep=self.n_averaged(),
                ckpt_predicate=_is_epoch_checkpoint,
            )
        else:
            self.checkpointer.save_and_keep_only(
                meta=meta,
                max_keys=["acc"],
                num_to_keep=getattr(self.hparams, "ckpt_num_to_keep", 1),
            )

    def valid_interval(self):
        """Return ``valid_interval`` (1 when unset), checked.

        Validating every epoch is for choosing the best one; with the
        last epochs averaged, nothing is chosen and the per-epoch
        validation (a tenth of a small model's training time) only logs.
        """
        n = getattr(self.hparams, "valid_interval", None)
        if n is None:
            return 1
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(
                "valid_interval must be a whole number of epochs >= 1 "
                f"(got {n!r})"
            )
        if n > 1 and self.n_averaged() <= 1:
            raise ConfigError(
                f"valid_interval: {n} needs average_checkpoints > 1: "
                "without averaging the checkpoint tested is the epoch best "
                "on validation, so every epoch must be validated"
            )
        return n

    def validates(self, epoch):
        """Whether ``epoch`` is validated.

        Every ``valid_interval``-th epoch and the last (the averaged
        checkpoint's meta needs one validated epoch).
        """
        n = self.valid_interval()
        limit = getattr(self.hparams.epoch_counter, "limit", None)
        return n == 1 or epoch % n == 0 or epoch == limit

    def _fit_valid(self, valid_set, epoch, enable):
        """Validate, or log the training loss and checkpoint only.

        The latter in the epochs that ``valid_interval`` skips.
        """
        if valid_set is None or self.validates(epoch):
            return super()._fit_valid(valid_set, epoch, enable)
        # A DataLoader draws its workers' base seed from the generator
        # every time it is iterated (torch.utils.data.DataLoader); drawn
        # here too, the random stream of the following epochs, and so
        # the training, are those of a run that validates every epoch.
        torch.empty((), dtype=torch.int64).random_(
            generator=getattr(valid_set, "generator", None)
        )
        self._end_epoch(epoch)

    def n_averaged(self):
        """Return how many last epochs are averaged (1: none, test the best)."""
        k = getattr(self.hparams, "average_checkpoints", None)
        if k is None:
            return 1
        if isinstance(k, bool) or not isinstance(k, (int, float)) or (
            int(k) != k or k < 1
        ):
            raise ConfigError(
                "average_checkpoints must be a whole number of epochs >= 1 "
                f"(1 = test the best epoch on validation), got {k!r}"
            )
        return int(k)

    def recomputes_batchnorm(self):
        """Whether ``recompute_batchnorm`` is set (checked; default False).

        Only averaged parameters need new BatchNorm statistics.
        """
        on = getattr(self.hparams, "recompute_batchnorm", False)
        if on is None:
            return False
        if not isinstance(on, bool):
            raise ConfigError(
                f"recompute_batchnorm must be True or False, got {on!r}"
            )
        if on and self.n_averaged() <= 1:
            raise ConfigError(
                "recompute_batchnorm: True needs average_checkpoints > 1 "
                "(the statistics are recomputed for averaged parameters)"
            )
        return on

    def recompute_batchnorm(self, dataset, loader_kwargs):
        """Recompute the BatchNorm statistics over the training clips.

        The running statistics averaged with the parameters are not the
        statistics of the averaged network; stochastic weight averaging
        (Izmailov et al. 2018, ``torch.optim.swa_utils.update_bn``)
        measures them again in one pass over the training data. Here the
        clips are passed as validation sees them (no augmentation), in
        training mode, without gradients, in the training batches (a
        length-bucketing sampler is set to epoch 0, so the batches, and
        the statistics, do not depend on the run's history: a resumed run
        gets the same). Each BatchNorm's statistics are the plain mean
        over the batches (``momentum=None``).

        Arguments
        ---------
        dataset : torch.utils.data.Dataset
            The training set.
        loader_kwargs : dict
            Its loader options (``batch_sampler`` or ``batch_size``;
            shuffling is turned off).

        Returns
        -------
        int
            The number of BatchNorm layers updated.
        """
        norms = [
            m for m in self.modules.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            and m.track_running_stats
        ]
        if not norms:
            return 0
        kwargs = dict(loader_kwargs)
        sampler = kwargs.get("batch_sampler")
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(0)
        if sampler is None:
            kwargs.update(shuffle=False, drop_last=False)
        loader = sb.dataio.dataloader.make_dataloader(dataset, **kwargs)
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        was_training = self.modules.training
        self.modules.train()
        n_batches = 0
        try:
            with torch.no_grad():
                for batch in loader:
                    self.compute_forward(batch, sb.Stage.VALID)
                    n_batches += 1
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
            self.modules.train(was_training)
        logger.info(
            "Recomputed the statistics of %d BatchNorm layer(s) over %d "
            "training batches", len(norms), n_batches,
        )
        return len(norms)

    def average_last_checkpoints(self, train_set=None, loader_kwargs=None):
        """Replace the last epochs' checkpoints by their average.

        With ``average_checkpoints: K`` (> 1) the parameters (and
        BatchNorm statistics) of every module of the last ``K``
        end-of-epoch checkpoints are averaged with SpeechBrain's
        ``average_checkpoints``, loaded, and saved as the run's one
        checkpoint (meta ``averaged_epochs``); testing, export and the
        analyses then all use it. Averaging the end of a decayed schedule
        instead of picking the best epoch on one validation speaker
        removes a selection step that rode on noise. With
        ``recompute_batchnorm: True`` the BatchNorm statistics of the
        average are measured again on ``train_set``
        (:meth:`recompute_batchnorm`) before it is saved. A finished run
        that is started again finds the averaged checkpoint and keeps it.

        Arguments
        ---------
        train_set : torch.utils.data.Dataset, optional
            The training set (needed with ``recompute_batchnorm``).
        loader_kwargs : dict, optional
            Its loader options.

        Returns
        -------
        list of int or None
            The averaged epochs (None without averaging).
        """
        k = self.n_averaged()
        if k <= 1 or self.checkpointer is None:
            return None
        mark_stage(f"averaging the last {k} epochs' checkpoints")
        latest = self.checkpointer.find_checkpoint()
        if latest is not None and AVERAGED_KEY in latest.meta:
            return latest.meta[AVERAGED_KEY]
        ckpts = self.checkpointer.find_checkpoints(
            ckpt_predicate=_is_epoch_checkpoint, max_num_checkpoints=k
        )
        if not ckpts:
            raise RuntimeError(
                f"no end-of-epoch checkpoint to average in "
                f"{self.checkpointer.checkpoints_dir}"
            )
        for name, obj in self.checkpointer.recoverables.items():
            if isinstance(obj, torch.nn.Module) and obj.state_dict():
                obj.load_state_dict(
                    sb.utils.checkpoints.average_checkpoints(
                        ckpts,
                        name,
                        parameter_loader=_load_for_averaging,
                    )
                )
        if self.recomputes_batchnorm():
            if train_set is None:
                raise ValueError(
                    "recompute_batchnorm needs the training set: "
                    "average_last_checkpoints(train_set, loader_kwargs)"
                )
            self.recompute_batchnorm(train_set, loader_kwargs or {})
        epochs = sorted(int(c.meta["epoch"]) for c in ckpts)
        accs = [c.meta["acc"] for c in ckpts if "acc" in c.meta]
        meta = {
            # The mean of the averaged epochs' validation accuracies (of
            # those validated: valid_interval; the last always is); the
            # averaged model's own is in valid_results.json.
            "acc": sum(accs) / len(accs) if accs else 0.0,
            "epoch": epochs[-1],
            AVERAGED_KEY: epochs,
        }
        self.checkpointer.save_and_keep_only(meta=meta, num_to_keep=1)
        logger.info("Averaged the checkpoints of epochs %s", epochs)
        return epochs


def _load_for_averaging(path, map_location=None):
    """``average_checkpoints``' loader: the project's weights-only one."""
    return load_checkpoint_file(path)


def _is_epoch_checkpoint(ckpt):
    """End-of-epoch training checkpoint (not intra-epoch, not averaged)."""
    return "epoch" in ckpt.meta and AVERAGED_KEY not in ckpt.meta


def length_bucket_sampler(dataset, options, seed=0):
    """SpeechBrain's ``DynamicBatchSampler`` over clip durations.

    Clips of similar duration are batched together, so that a batch of
    variable-length clips is mostly speech, not padding (on FSDD, random
    batches of 32 are padded to 1.9x their mean clip duration). Batches
    hold up to ``max_batch_length`` seconds (by their bucket's upper
    boundary), come in a random order and change every epoch
    (:meth:`RelevanceBrain.on_stage_start` tells the sampler the epoch).

    Arguments
    ---------
    dataset : speechbrain.dataio.dataset.DynamicItemDataset
        Training data whose manifest entries hold ``duration`` (seconds).
    options : dict
        ``max_batch_length`` (seconds of audio per batch),
        ``bucket_boundaries`` (ascending upper durations in seconds),
        optional ``max_batch_ex`` (most clips in a batch) and
        ``max_duration`` (clips are cropped to it when loaded).
    seed : int
        Seed of the shuffling (with the epoch).

    Returns
    -------
    speechbrain.dataio.sampler.DynamicBatchSampler
        The batch sampler.

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = DynamicItemDataset(
    ...     {f"c{i}": {"duration": 0.1 * (1 + i % 5)} for i in range(20)}
    ... )
    >>> sampler = length_bucket_sampler(
    ...     data, {"max_batch_length": 1.0, "bucket_boundaries": [0.25, 0.5]}
    ... )
    >>> sorted(len(b) for b in sampler)
    [2, 2, 2, 2, 2, 2, 4, 4]
    """
    from speechbrain.dataio.sampler import DynamicBatchSampler

    known = {"max_batch_length", "bucket_boundaries", "max_batch_ex",
             "max_duration"}
    unknown = sorted(set(options) - known)
    if unknown or "max_batch_length" not in options:
        raise ConfigError(
            f"dynamic_batching: unknown keys {unknown}; it takes "
            f"{sorted(known)} (max_batch_length is required)"
        )
    max_duration = options.get("max_duration") or float("inf")
    return DynamicBatchSampler(
        dataset,
        max_batch_length=float(options["max_batch_length"]),
        bucket_boundaries=list(options.get("bucket_boundaries") or []),
        num_buckets=None if options.get("bucket_boundaries") else 8,
        length_func=lambda entry: min(float(entry["duration"]), max_duration),
        max_batch_ex=options.get("max_batch_ex"),
        shuffle=True,
        batch_ordering="random",
        seed=int(seed),
    )


def load_recipe(argv):
    """Read a recipe's command line and yaml, then join ``torchrun``'s group.

    The start of every recipe's ``train.py``: SpeechBrain's command line
    (the yaml, its overrides, the run options), the run options checked
    (:func:`~speechbrain_relevance.checks.check_run_opts`), the yaml
    loaded and checked (:func:`~speechbrain_relevance.cli.load_hparams`),
    and, under ``torchrun``, the process group joined with the yaml's
    ``ddp_timeout_s`` as the limit of every collective wait
    (:func:`~speechbrain_relevance.training.distributed.init_distributed`).

    Arguments
    ---------
    argv : list of str
        The command line (without the program name).

    Returns
    -------
    tuple
        ``(hparams_file, run_opts, overrides, hparams)``.
    """
    from speechbrain_relevance.checks import check_run_opts

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    check_run_opts(run_opts)
    # Bad keys or values end in one line naming the yaml key.
    hparams = load_hparams(hparams_file, overrides)
    # Under torchrun: join the process group before anything collective.
    init_distributed(run_opts, hparams.get("ddp_timeout_s"))
    return hparams_file, run_opts, overrides, hparams


def find_module_checkpoint(path, key="compute_features", max_key="acc"):
    """Locate a module's saved parameters from an earlier recipe run.

    Arguments
    ---------
    path : str
        A ``<key>.ckpt`` file, or anything
        :func:`~speechbrain_relevance.checkpoint_files.find_model_checkpoint`
        takes (a ``CKPT+...`` folder, a run's save or output folder: the
        best checkpoint by ``max_key``).
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
    try:
        ckpt = find_model_checkpoint(path, max_key=max_key, modules=[key])
    except FileNotFoundError:
        ckpt = None
    if ckpt is None or key not in ckpt.paramfiles:
        raise FileNotFoundError(
            f"No checkpoint of {key!r} found at {path} (give a {key}.ckpt "
            "file, a CKPT+ folder, or a run's output or save folder)"
        )
    return str(ckpt.paramfiles[key])


def load_frozen(module, path, key="compute_features", sample_rate=None):
    """Load a module's parameters from an earlier run and freeze them.

    The two-stage alternative to joint training: a filterbank learnt in
    one run is reused, fixed, in the next. The earlier run must have the
    same front-end (:func:`check_same_module`): its kind, its sample rate
    and its number of bands.

    Arguments
    ---------
    module : torch.nn.Module
        The module to load into.
    path : str
        Anything :func:`find_module_checkpoint` accepts.
    key : str
        Name of the module in the checkpoint.
    sample_rate : int, optional
        This run's sample rate, checked against the earlier run's.

    Returns
    -------
    str
        The checkpoint file that was loaded.
    """
    ckpt = find_module_checkpoint(path, key)
    state = load_checkpoint_file(ckpt)
    check_same_module(module, state, ckpt, sample_rate=sample_rate, key=key)
    module.load_state_dict(state)
    for p in module.parameters():
        p.requires_grad_(False)
    if hasattr(module, "freeze"):
        module.freeze = True
    logger.info("Loaded and froze %s from %s", key, ckpt)
    return ckpt


def run_settings_of(ckpt_file):
    """Find and read the ``hyperparams.yaml`` of the run a file belongs to.

    Arguments
    ---------
    ckpt_file : str
        A module's ``.ckpt`` (in ``<run>/save/CKPT+.../``, or beside the
        run's ``hyperparams.yaml``).

    Returns
    -------
    tuple
        ``(path, text)`` of the run's ``hyperparams.yaml``, or
        ``(None, None)`` if none is found.
    """
    folder = os.path.dirname(os.path.abspath(ckpt_file))
    for _ in range(3):
        candidate = os.path.join(folder, "hyperparams.yaml")
        if os.path.isfile(candidate):
            try:
                with open(candidate, encoding="utf-8") as f:
                    return candidate, f.read()
            except (OSError, UnicodeDecodeError):
                return None, None
        folder = os.path.dirname(folder)
    return None, None


def check_same_module(module, state, ckpt_file, sample_rate=None,
                      key="compute_features"):
    """Refuse parameters of another kind of module, rate or size.

    Checked against the earlier run's ``hyperparams.yaml`` (found by
    :func:`run_settings_of`): the class the run built as ``key`` and its
    ``sample_rate`` (a learnt filterbank stores its frequencies relative
    to the Nyquist frequency, so at another rate they would land on other
    frequencies); then, against the parameters, their names and shapes
    (e.g. the number of bands).

    Arguments
    ---------
    module : torch.nn.Module
        The module the parameters are for.
    state : dict
        The parameters read from ``ckpt_file``.
    ckpt_file : str
        Where they come from.
    sample_rate : int, optional
        This run's sample rate (None: not checked).
    key : str
        The module's yaml key.

    Raises
    ------
    ConfigError
        Naming ``pretrained_filterbank`` and what differs.
    """
    import re

    where = f"pretrained_filterbank: {ckpt_file}"
    run_yaml, text = run_settings_of(ckpt_file)
    if text is not None:
        found = re.search(
            rf"^{re.escape(key)}:\s*!new:([\w.]+)", text, flags=re.M
        )
        theirs = found.group(1).rsplit(".", 1)[-1] if found else None
        ours = type(module).__name__
        if theirs and theirs != ours:
            raise ConfigError(
                f"{where}: its run built {key} as {theirs}, this run as "
                f"{ours}: load a filterbank of the same kind"
            )
        rate = re.search(r"^sample_rate:\s*(\d+)\s*$", text, flags=re.M)
        theirs_rate = int(rate.group(1)) if rate else None
        if (
            sample_rate is not None
            and theirs_rate is not None
            and theirs_rate != int(sample_rate)
        ):
            raise ConfigError(
                f"{where}: its run is at {theirs_rate} Hz (sample_rate in "
                f"{run_yaml}), this run at {int(sample_rate)} Hz: the "
                "filters are stored relative to the Nyquist frequency and "
                "would move to other frequencies"
            )
    elif sample_rate is not None:
        logger.warning(
            "pretrained_filterbank: no hyperparams.yaml of the run of %s: "
            "its sample rate cannot be checked against this run's %s Hz",
            ckpt_file, sample_rate,
        )
    if not isinstance(state, dict):
        raise ConfigError(f"{where}: holds no parameters (a state dict)")
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ConfigError(
            f"{where}: its {key} has other parameters (missing "
            f"{missing or 'none'}, unexpected {unexpected or 'none'}): "
            "another front-end or compression"
        )
    for name, value in own.items():
        theirs = getattr(state[name], "shape", None)
        if theirs is not None and tuple(theirs) != tuple(value.shape):
            raise ConfigError(
                f"{where}: {key}.{name} has shape {list(theirs)} there, "
                f"{list(value.shape)} here: another number of bands or "
                "filter size (e.g. n_bands)"
            )


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
    speechbrain_relevance.errors.ConfigError: batch_size 4 is larger than \
the 3 train clip(s)...
    """
    batch_size = check_batch_size(loader_opts, split)
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


def check_batch_size(loader_opts, split="train"):
    """Return a loader's ``batch_size``, refusing one that is not >= 1.

    Arguments
    ---------
    loader_opts : dict
        Data loader options (``batch_size`` defaults to 1).
    split : str
        Name of the split, for the message.

    Returns
    -------
    int
        The batch size.

    Example
    -------
    >>> check_batch_size({"batch_size": 8})
    8
    >>> check_batch_size({"batch_size": -1})
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: batch_size must be an integer >= \
1 (clips per train batch), got -1
    """
    batch_size = loader_opts.get("batch_size", 1)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ConfigError(
            f"batch_size must be an integer >= 1 (clips per {split} batch), "
            f"got {batch_size!r}"
        )
    return batch_size


def check_epochs(hparams):
    """Refuse a number of epochs that trains and evaluates nothing.

    A negative limit never trains; 0 (or a limit the checkpoint has
    reached) only makes sense to evaluate a finished run's checkpoint, and
    is said in the log. Without a checkpoint, 0 would test an untrained
    model.

    Arguments
    ---------
    hparams : dict
        ``epoch_counter`` (its ``limit``), ``checkpointer`` and, for the
        message, ``number_of_epochs``.

    Returns
    -------
    int
        The number of epochs.

    Example
    -------
    >>> from speechbrain.utils.epoch_loop import EpochCounter
    >>> check_epochs({"epoch_counter": EpochCounter(3), "checkpointer": None})
    3
    >>> check_epochs({"epoch_counter": EpochCounter(-1), "checkpointer": None})
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: epoch_counter's limit must be an \
integer >= 1 (0 only evaluates a finished run's checkpoint), got -1
    """
    limit = hparams["epoch_counter"].limit
    key = (
        "number_of_epochs"
        if "number_of_epochs" in hparams
        else "epoch_counter's limit"
    )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError(
            f"{key} must be an integer >= 1 (0 only evaluates a finished "
            f"run's checkpoint), got {limit!r}"
        )
    checkpointer = hparams.get("checkpointer")
    ckpt = checkpointer.find_checkpoint() if checkpointer else None
    if ckpt is None:
        if limit == 0:
            where = (
                f" in {checkpointer.checkpoints_dir}" if checkpointer else ""
            )
            raise ConfigError(
                f"{key}=0 trains nothing and there is no checkpoint{where} "
                f"to evaluate: set {key} >= 1"
            )
    elif "epoch" in ckpt.meta and limit <= int(ckpt.meta["epoch"]):
        logger.info(
            "%s=%d: the checkpoint in %s has finished epoch %d, so there is "
            "no training; evaluating it only",
            key,
            limit,
            checkpointer.checkpoints_dir,
            int(ckpt.meta["epoch"]),
        )
    return limit


def drop_stale_epoch_lines(train_logger, epoch):
    """Remove the log lines of ``epoch`` and later left by a killed run.

    The epoch's line is written before its checkpoint; a run killed in
    between is resumed from the previous checkpoint and runs the epoch
    again, which would log it twice.

    Arguments
    ---------
    train_logger : speechbrain.utils.train_logger.FileTrainLogger
        The logger (others have no ``save_file`` and are left alone).
    epoch : int
        The epoch about to be logged.

    Returns
    -------
    int
        The number of lines removed.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain.utils.train_logger import FileTrainLogger
    >>> log = FileTrainLogger(os.path.join(tempfile.mkdtemp(), "log.txt"))
    >>> for e in (1, 2, 3):
    ...     log.log_stats({"epoch": e}, train_stats={"loss": 1.0})
    >>> drop_stale_epoch_lines(log, 3)
    1
    >>> open(log.save_file).read().count("epoch:")
    2
    """
    path = getattr(train_logger, "save_file", None)
    if not path or not if_main_process() or not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()

    def logged_epoch(line):
        if not line.startswith("epoch: "):
            return None
        number = line[len("epoch: "):].split(",")[0].split()[0]
        return int(number) if number.isdigit() else None

    keep = [
        line
        for line in lines
        if logged_epoch(line) is None or logged_epoch(line) < epoch
    ]
    if len(keep) == len(lines):
        return 0
    # Replaced in one step: a kill now leaves the old or the new log.
    write_text(path, "".join(keep))
    logger.info(
        "Removed %d line(s) of epoch %d or later from %s, left by an "
        "interrupted run",
        len(lines) - len(keep),
        epoch,
        path,
    )
    return len(lines) - len(keep)


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
        mark_stage("loading the pretrained filterbank")
        load_frozen(
            hparams["compute_features"],
            hparams["pretrained_filterbank"],
            sample_rate=hparams.get("sample_rate"),
        )
    if output_folder is not None:
        hparams = dict(hparams, output_folder=output_folder)
    train_opts = hparams["train_dataloader_opts"]
    check_batches(len(datasets["train"]), train_opts)
    check_batch_size(hparams["valid_dataloader_opts"], "valid")
    check_epochs(hparams)
    brain = brain_class(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    if hparams.get("dynamic_batching"):
        sampler = length_bucket_sampler(
            datasets["train"],
            hparams["dynamic_batching"],
            seed=hparams.get("seed", 0),
        )
        brain.train_batch_sampler = sampler
        # batch_sampler excludes DataLoader's batch_size/shuffle/drop_last.
        train_opts = {
            k: v
            for k, v in train_opts.items()
            if k not in ("batch_size", "shuffle", "drop_last", "sampler")
        }
        train_opts["batch_sampler"] = sampler
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=train_opts,
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    brain.average_last_checkpoints(datasets["train"], train_opts)
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
