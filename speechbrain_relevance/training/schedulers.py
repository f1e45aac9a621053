"""Learning-rate schedules of the recipes, checkpointable by SpeechBrain.

* :class:`WarmRestartsScheduler`: cosine annealing with warm restarts
  (SGDR), stepped every batch with fractional epochs (DCASE2020 recipe:
  ``T_0 = 1``, ``T_mult = 2``, ``eta_min = 1e-5``, restarts at epochs 1, 3,
  7, 15, 31, 63, 127).
* :class:`StepDecayScheduler`: the learning rate times ``gamma`` every
  ``step_size`` epochs (UrbanSound8k recipe: x0.1 every 10 epochs).

Unlike torch's schedulers they are built without an optimizer (so they can
be declared in a hyperparameter file next to ``opt_class``, like
SpeechBrain's own schedulers) and are given the optimizer when stepped.
They are pure functions of the (fractional) epoch plus the maximum
learning rates, which they capture from the optimizer on the first step
and save in their checkpoint, so a recovered run continues exactly; add
them to the ``Checkpointer``'s recoverables.

Epochs are counted from 0 (the number of completed epochs, as in torch):
inside a :class:`speechbrain.core.Brain`, whose epoch counter starts at 1
and whose ``self.step`` counts batches from 1, step once per batch before
the update, e.g. in ``on_fit_batch_start``::

    self.hparams.lr_scheduler(
        self.optimizer,
        epoch=self.hparams.epoch_counter.current - 1,
        batch_index=self.step - 1,
        n_batches=self.n_train_batches,
    )

Authors
 * speechbrain-relevance developers
"""

import math

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from speechbrain_relevance.checkpoint_files import load_checkpoint_file
from speechbrain_relevance.errors import ConfigError


@register_checkpoint_hooks
class EpochLRScheduler:
    """Base class: a learning rate that is a function of the epoch.

    Subclasses implement :meth:`factor` (learning rate as a function of
    the fractional epoch and the maximum learning rate). This class keeps
    the maximum learning rates (one per parameter group) and the last
    fractional epoch, sets the optimizer's rates and saves/loads its state
    through SpeechBrain's checkpointer (the hooks registered here are
    found for subclasses too).

    Arguments
    ---------
    lr_max : float or sequence of float, optional
        Maximum (initial) learning rate(s). If None, taken from the
        optimizer on the first step (its ``initial_lr``, set by torch
        schedulers, else its current ``lr``).

    Example
    -------
    >>> class Halving(EpochLRScheduler):
    ...     def lr_at(self, epoch, lr_max):
    ...         return lr_max * 0.5 ** math.floor(epoch)
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> Halving().step(opt, epoch=2)
    (1.0, 0.25)
    """

    def __init__(self, lr_max=None):
        self.lr_max = lr_max
        self.base_lrs = None
        self.last_epoch = None

    def lr_at(self, epoch, lr_max):
        """Learning rate at a fractional epoch.

        Arguments
        ---------
        epoch : float
            Completed epochs (fractional), from 0.
        lr_max : float
            Maximum learning rate.

        Returns
        -------
        float
            The learning rate.
        """
        raise NotImplementedError

    def _capture_base_lrs(self, optimizer):
        """Fix the maximum learning rates on the first step."""
        groups = optimizer.param_groups
        if self.base_lrs is None:
            if self.lr_max is None:
                # Like torch's schedulers: keep the starting rate in the
                # param group so it survives later changes of ``lr``.
                self.base_lrs = [
                    float(g.setdefault("initial_lr", g["lr"])) for g in groups
                ]
            elif isinstance(self.lr_max, (int, float)):
                self.base_lrs = [float(self.lr_max)] * len(groups)
            else:
                self.base_lrs = [float(v) for v in self.lr_max]
        if len(self.base_lrs) != len(groups):
            raise ValueError(
                f"{type(self).__name__} has {len(self.base_lrs)} learning "
                f"rates for an optimizer with {len(groups)} param groups"
            )

    def step(self, optimizer, epoch, batch_index=0, n_batches=1):
        """Set the optimizer's learning rates for a point in training.

        Arguments
        ---------
        optimizer : torch.optim.Optimizer
            The optimizer whose param groups are updated.
        epoch : int or float
            Completed epochs (from 0).
        batch_index : int
            Batches completed in the current epoch (from 0).
        n_batches : int
            Batches per epoch; the fractional epoch is
            ``epoch + batch_index / n_batches``.

        Returns
        -------
        float
            Learning rate of the first param group before the step.
        float
            Learning rate of the first param group after the step.
        """
        if n_batches < 1:
            raise ValueError(f"n_batches must be >= 1, got {n_batches}")
        self._capture_base_lrs(optimizer)
        position = float(epoch) + float(batch_index) / float(n_batches)
        old_lr = optimizer.param_groups[0]["lr"]
        for group, lr_max in zip(optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(position, lr_max)
        self.last_epoch = position
        return old_lr, optimizer.param_groups[0]["lr"]

    __call__ = step

    def get_last_lr(self):
        """Learning rates (one per group) at the last step.

        Returns
        -------
        list of float or None
            None before the first step.
        """
        if self.last_epoch is None:
            return None
        return [self.lr_at(self.last_epoch, lr) for lr in self.base_lrs]

    def state_dict(self):
        """Return the state that is saved in checkpoints.

        Returns
        -------
        dict
            ``base_lrs`` and ``last_epoch``.
        """
        return {"base_lrs": self.base_lrs, "last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        """Restore a state from :meth:`state_dict`.

        Arguments
        ---------
        state : dict
            A state from :meth:`state_dict`.
        """
        self.base_lrs = state["base_lrs"]
        self.last_epoch = state["last_epoch"]

    @mark_as_saver
    def save(self, path):
        """Save the state (SpeechBrain checkpoint hook).

        Arguments
        ---------
        path : str or pathlib.Path
            File to write.
        """
        torch.save(self.state_dict(), path)

    @mark_as_loader
    def load(self, path, end_of_epoch=False):
        """Load the state (SpeechBrain checkpoint hook).

        Arguments
        ---------
        path : str or pathlib.Path
            File to read.
        end_of_epoch : bool
            Unused: the state is the exact position either way.
        """
        del end_of_epoch
        self.load_state_dict(load_checkpoint_file(path))


class WarmRestartsScheduler(EpochLRScheduler):
    """Cosine annealing with warm restarts, for fractional epochs.

    Within a period of ``T_i`` epochs starting at ``s_i``::

        lr = eta_min + (lr_max - eta_min) * (1 + cos(pi * (e - s_i) / T_i)) / 2

    with ``T_0`` the first period and ``T_{i+1} = T_mult * T_i``. The same
    schedule as :class:`torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`
    stepped with ``epoch + batch_index / n_batches``, but computed from the
    position alone (restarts land exactly on the period boundaries, with
    no accumulated rounding) and without owning the optimizer.

    Arguments
    ---------
    T_0 : int or float
        Length of the first period in epochs.
    T_mult : int
        Growth factor of the period after each restart (>= 1).
    eta_min : float
        Minimum learning rate.
    lr_max : float or sequence of float, optional
        Maximum learning rate(s); by default the optimizer's.

    Example
    -------
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    >>> sched = WarmRestartsScheduler(T_0=1, T_mult=2, eta_min=1e-5)
    >>> sched.restart_epochs(130)
    [1, 3, 7, 15, 31, 63, 127]
    >>> _ = sched.step(opt, epoch=1, batch_index=0, n_batches=100)
    >>> opt.param_groups[0]["lr"]  # a restart: back to the maximum
    0.1
    >>> _ = sched.step(opt, epoch=2, batch_index=0, n_batches=100)
    >>> round(opt.param_groups[0]["lr"], 6)  # middle of the 2nd period
    0.050005
    """

    def __init__(self, T_0=1, T_mult=2, eta_min=0.0, lr_max=None):
        super().__init__(lr_max)
        if T_0 <= 0:
            raise ValueError(f"T_0 must be > 0, got {T_0}")
        if int(T_mult) != T_mult or T_mult < 1:
            raise ValueError(f"T_mult must be an integer >= 1, got {T_mult}")
        self.T_0 = T_0
        self.T_mult = int(T_mult)
        self.eta_min = float(eta_min)

    def period(self, epoch):
        """Locate a fractional epoch in the restart cycles.

        Arguments
        ---------
        epoch : float
            Completed epochs (fractional), from 0.

        Returns
        -------
        float
            Epochs since the last restart (``T_cur``).
        float
            Length of the current period (``T_i``).
        """
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if self.T_mult == 1:
            return math.fmod(epoch, self.T_0), self.T_0
        t_cur, t_i = epoch, self.T_0
        # Walk the periods (a handful: they grow geometrically) rather
        # than use a logarithm, which can round across a boundary.
        while t_cur >= t_i:
            t_cur -= t_i
            t_i *= self.T_mult
        return t_cur, t_i

    def lr_at(self, epoch, lr_max):
        """Learning rate at a fractional epoch.

        Arguments
        ---------
        epoch : float
            Completed epochs (fractional), from 0.
        lr_max : float
            Maximum learning rate.

        Returns
        -------
        float
            The learning rate.
        """
        t_cur, t_i = self.period(epoch)
        cosine = (1.0 + math.cos(math.pi * t_cur / t_i)) / 2.0
        return self.eta_min + (lr_max - self.eta_min) * cosine

    def restart_epochs(self, n_epochs):
        """Epochs (from 0) at which the learning rate restarts.

        Arguments
        ---------
        n_epochs : int
            Length of training in epochs.

        Returns
        -------
        list
            Restart positions below ``n_epochs``.
        """
        out, start, t_i = [], self.T_0, self.T_0
        while start < n_epochs:
            out.append(start)
            t_i *= self.T_mult
            start += t_i
        return out


class StepDecayScheduler(EpochLRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    ``lr = lr_max * gamma ** floor(epoch / step_size)`` with ``epoch``
    counted from 0, i.e. epochs 0-9 (SpeechBrain's 1-10) use ``lr_max``,
    10-19 ``lr_max * gamma`` and so on; the same as
    :class:`torch.optim.lr_scheduler.StepLR`. SpeechBrain's
    ``StepScheduler`` is not used because it decays one epoch earlier
    (``floor((1 + epoch) / decay_drop)``) and does not set the optimizer.

    Arguments
    ---------
    step_size : int
        Epochs between decays.
    gamma : float
        Decay factor.
    lr_max : float or sequence of float, optional
        Initial learning rate(s); by default the optimizer's.

    Example
    -------
    >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    >>> sched = StepDecayScheduler(step_size=10, gamma=0.1)
    >>> [round(sched.step(opt, epoch=e)[1], 8) for e in (0, 9, 10, 29)]
    [0.001, 0.001, 0.0001, 1e-05]
    """

    def __init__(self, step_size=10, gamma=0.1, lr_max=None):
        super().__init__(lr_max)
        if step_size <= 0:
            raise ValueError(f"step_size must be > 0, got {step_size}")
        self.step_size = step_size
        self.gamma = float(gamma)

    def lr_at(self, epoch, lr_max):
        """Learning rate at a fractional epoch.

        Arguments
        ---------
        epoch : float
            Completed epochs (fractional), from 0.
        lr_max : float
            Initial learning rate.

        Returns
        -------
        float
            The learning rate.
        """
        return lr_max * self.gamma ** math.floor(epoch / self.step_size)


class WarmupCosineScheduler(EpochLRScheduler):
    """Linear warm-up, one cosine decay, optionally a constant tail.

    ``lr = lr_max * epoch / warmup`` during the first ``warmup`` epochs,
    then ``end + (lr_max - end) * (1 + cos(pi * p)) / 2`` with
    ``p = (epoch - warmup) / (total - hold - warmup)`` going from 0 to 1
    at ``total - hold`` epochs, and ``end`` for the last ``hold`` epochs;
    ``end = eta_min + (lr_max - eta_min) * hold_scale``. Stepped after
    every batch with the fractional epoch. By default (``hold = 0``,
    ``hold_scale = 0``) the rate ends at ``eta_min``, where the last
    epochs' checkpoints lie close together and can be averaged. With a
    tail (stochastic weight averaging, Izmailov et al. 2018) the averaged
    epochs are trained at a constant, larger rate, so that their average
    covers a wider region of the loss surface than the end of a decay.
    Every parameter group decays from its own maximum.

    Arguments
    ---------
    total : float
        Epochs of the whole schedule (the training length).
    warmup : float
        Epochs of linear warm-up (0 for none; at most ``total / 2``).
    eta_min : float
        Learning rate at the end.
    lr_max : float or sequence of float, optional
        Peak learning rate(s); by default the optimizer's.
    hold : float
        Epochs at the end trained at the constant rate ``end`` (at most
        ``total - warmup``; 0: none).
    hold_scale : float
        Where the decay ends, as a fraction of the way from ``eta_min``
        to ``lr_max`` (in [0, 1]).

    Example
    -------
    >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    >>> sched = WarmupCosineScheduler(total=10, warmup=1)
    >>> [round(sched.step(opt, epoch=e)[1], 6) for e in (0.5, 1, 5.5, 10)]
    [0.0005, 0.001, 0.0005, 0.0]
    >>> swa = WarmupCosineScheduler(total=12, warmup=1, hold=4,
    ...                             hold_scale=0.25)
    >>> [round(swa.step(opt, epoch=e)[1], 6) for e in (1, 4.5, 8, 12)]
    [0.001, 0.000625, 0.00025, 0.00025]
    """

    def __init__(self, total, warmup=1.0, eta_min=0.0, lr_max=None, hold=0.0,
                 hold_scale=0.0):
        super().__init__(lr_max)
        if not total > 0 or not warmup >= 0:
            raise ValueError(
                "WarmupCosineScheduler needs total > 0 and warmup >= 0 "
                f"epochs, got total={total}, warmup={warmup}"
            )
        self.total = float(total)
        # At most half the schedule warms up, so that a short run (a
        # one-epoch smoke test of a recipe) still decays.
        self.warmup = min(float(warmup), self.total / 2)
        self.eta_min = float(eta_min)
        if not 0 <= hold <= self.total - self.warmup:
            raise ConfigError(
                f"{{hold}} must be between 0 and the epochs after the "
                f"warm-up ({self.total - self.warmup:g}), got {hold!r}",
                keys=["hold"],
            )
        if not 0 <= hold_scale <= 1:
            raise ConfigError(
                f"{{hold_scale}} must be in [0, 1], got {hold_scale!r}",
                keys=["hold_scale"],
            )
        self.hold = float(hold)
        self.hold_scale = float(hold_scale)

    def lr_at(self, epoch, lr_max):
        """Return the rate at a fractional epoch (see the class)."""
        if epoch < self.warmup:
            return lr_max * epoch / self.warmup
        end = self.eta_min + (lr_max - self.eta_min) * self.hold_scale
        decay = self.total - self.hold - self.warmup
        if decay <= 0:
            return end
        p = min(1.0, (epoch - self.warmup) / decay)
        return end + (lr_max - end) * (1 + math.cos(math.pi * p)) / 2
