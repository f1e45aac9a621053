"""RelevanceBrain options: the front-end's learning rate, feature norms.

A tiny Brain (an 8-filter Cos-Gauss front-end at 8 kHz and a one-block
CompactCNN) built directly, no dataset: ``init_optimizers`` and
``representation`` are called by hand.
"""

import types

import pytest
import speechbrain as sb
import torch

from speechbrain_relevance.augment import mixup_loss
from speechbrain_relevance.lobes import CosGaussFilterbank
from speechbrain_relevance.models import CompactCNN
from speechbrain_relevance.training import (
    StepDecayScheduler,
    WarmRestartsScheduler,
)
from speechbrain_relevance.training.brain import RelevanceBrain

LR = 1e-3


class TinyBrain(RelevanceBrain):
    """The shared Brain with its default classify (concatenated heads)."""


def _frontend(**kwargs):
    return CosGaussFilterbank(
        n_filters=8,
        sample_rate=8000,
        win_length=200,
        hop_length=80,
        kernel_size=65,
        **kwargs,
    )


def _brain(frontend=None, with_frontend=True, **hparams):
    modules = {"classifier": CompactCNN(n_bands=8, channels=(4,))}
    if with_frontend:
        modules["compute_features"] = frontend or _frontend()
    return TinyBrain(
        modules=modules,
        opt_class=lambda params: torch.optim.Adam(params, lr=LR),
        hparams=dict(hparams),
        run_opts={"device": "cpu"},
    )


def _ids(params):
    return {id(p) for p in params}


def _front_params(brain):
    return list(brain.modules.compute_features.parameters())


def _classifier_params(brain):
    return list(brain.modules.classifier.parameters())


# ----------------------------------------------------------------------------
# frontend_lr: the front-end's own param group


@pytest.mark.parametrize("hparams", [{}, {"frontend_lr": None}])
def test_no_frontend_lr_gives_one_group(hparams):
    brain = _brain(**hparams)
    brain.init_optimizers()
    groups = brain.optimizer.param_groups
    assert len(groups) == 1
    assert groups[0]["lr"] == LR
    assert _ids(groups[0]["params"]) == _ids(brain.modules.parameters())


def test_frontend_lr_gives_frontend_its_own_group():
    brain = _brain(frontend=_frontend(learn_gain=True), frontend_lr=0.05)
    brain.init_optimizers()
    groups = brain.optimizer.param_groups
    assert len(groups) == 2
    rest, front = groups
    assert rest["lr"] == LR
    assert front["lr"] == 0.05
    # The front-end (theta and log_gain) exactly in the second group,
    # everything else exactly in the first.
    assert len(_front_params(brain)) == 2
    assert _ids(front["params"]) == _ids(_front_params(brain))
    assert _ids(rest["params"]) == _ids(_classifier_params(brain))
    assert brain.optimizers_dict == {"opt_class": brain.optimizer}


def test_frontend_lr_string_from_command_line_is_a_float():
    # An override such as --frontend_lr=1e-2 may arrive as a string.
    brain = _brain(frontend_lr="1e-2")
    brain.init_optimizers()
    assert brain.optimizer.param_groups[1]["lr"] == pytest.approx(0.01)


def test_frozen_frontend_params_are_left_out():
    frontend = _frontend(learn_gain=True)
    frontend.theta.requires_grad_(False)
    brain = _brain(frontend=frontend, frontend_lr=0.05)
    brain.init_optimizers()
    groups = brain.optimizer.param_groups
    assert len(groups) == 2
    assert _ids(groups[1]["params"]) == {id(frontend.log_gain)}
    in_optimizer = set().union(*(_ids(g["params"]) for g in groups))
    assert id(frontend.theta) not in in_optimizer


def test_fully_frozen_frontend_gives_one_group():
    brain = _brain(frontend=_frontend(freeze=True), frontend_lr=0.05)
    brain.init_optimizers()
    groups = brain.optimizer.param_groups
    assert len(groups) == 1
    assert groups[0]["lr"] == LR
    assert _ids(groups[0]["params"]) == _ids(_classifier_params(brain))


def test_frontend_lr_without_compute_features_raises():
    brain = _brain(with_frontend=False, frontend_lr=0.05)
    with pytest.raises(ValueError, match="compute_features"):
        brain.init_optimizers()


@pytest.mark.parametrize(
    "scheduler",
    [
        StepDecayScheduler(step_size=1, gamma=0.5),
        WarmRestartsScheduler(T_0=1, T_mult=2),
    ],
    ids=["step_decay", "warm_restarts"],
)
def test_schedulers_keep_the_ratio_between_groups(scheduler):
    brain = _brain(frontend_lr=0.02)
    brain.init_optimizers()
    opt = brain.optimizer
    seen = set()
    for epoch in range(4):
        for batch in (0, 1, 3):
            scheduler.step(opt, epoch=epoch, batch_index=batch, n_batches=4)
            rest, front = (g["lr"] for g in opt.param_groups)
            assert front == pytest.approx(20 * rest, rel=1e-9)
            seen.add(round(rest, 12))
    # The schedule did change the rates (and each group from its own max).
    assert len(seen) > 2
    assert max(seen) == pytest.approx(LR)
    assert scheduler.base_lrs == [LR, 0.02]


# ----------------------------------------------------------------------------
# feature_norm

#: 1520 samples = 20 frames; the second clip is half real (10 frames).
N_SAMPLES = 1520
LENS = torch.tensor([1.0, 0.5])


def _wavs():
    gen = torch.Generator().manual_seed(0)
    wavs = torch.randn(2, N_SAMPLES, generator=gen)
    t = torch.arange(N_SAMPLES) / 8000
    wavs[0] += torch.sin(2 * torch.pi * 440 * t)
    wavs[1, N_SAMPLES // 2:] = 0.0  # the padding of the short clip
    return wavs


def _real_frames(n_frames):
    # SpeechBrain's convention: ceil(lens * frames) frames are real.
    return [int(torch.ceil(le * n_frames - 1e-6)) for le in LENS]


@pytest.mark.parametrize("norm", [None, "minmax"])
def test_default_norm_is_per_example_minmax(norm):
    hparams = {} if norm is None else {"feature_norm": norm}
    brain = _brain(**hparams)
    with torch.no_grad():
        heads = _heads(brain, _wavs(), LENS)
        feats = brain.modules.compute_features(_wavs())
    assert len(heads) == 1
    out = heads[0]
    assert out.shape == feats.shape == (2, 20, 8)
    for b, n_real in enumerate(_real_frames(out.shape[1])):
        real = out[b, :n_real]
        assert float(real.min()) == pytest.approx(0.0, abs=1e-6)
        assert float(real.max()) == pytest.approx(1.0, abs=1e-6)
        # The same affine map as the raw features (min-max, not per band).
        raw = feats[b, :n_real]
        expected = (raw - raw.min()) / (raw.max() - raw.min())
        torch.testing.assert_close(real, expected, atol=1e-5, rtol=1e-5)


def test_sentence_norm_standardises_real_frames_per_band():
    brain = _brain(feature_norm="sentence")
    with torch.no_grad():
        (out,) = _heads(brain, _wavs(), LENS)
        feats = brain.modules.compute_features(_wavs())
    n_frames = out.shape[1]
    n_real = _real_frames(n_frames)
    assert n_real == [20, 10]
    for b, n in enumerate(n_real):
        real = out[b, :n]
        torch.testing.assert_close(
            real.mean(0), torch.zeros(8), atol=1e-4, rtol=0
        )
        torch.testing.assert_close(
            real.std(0, unbiased=False), torch.ones(8), atol=1e-3, rtol=0
        )
        # Statistics of the real frames only: the padding (silence, far
        # below every real frame) does not enter them.
        raw = feats[b, :n]
        expected = (raw - raw.mean(0)) / raw.std(0, unbiased=False)
        torch.testing.assert_close(real, expected, atol=1e-4, rtol=1e-4)
    padded = feats[1]
    with_padding = (padded - padded.mean(0)) / padded.std(0, unbiased=False)
    assert not torch.allclose(out[1, :10], with_padding[:10], atol=1e-2)


def test_feature_norm_module_is_used_as_is():
    calls = []

    class Halve(torch.nn.Module):
        def forward(self, feats, lens):
            calls.append(lens)
            return feats / 2

    brain = _brain(feature_norm=Halve())
    with torch.no_grad():
        (out,) = _heads(brain, _wavs(), LENS)
        feats = brain.modules.compute_features(_wavs())
    assert len(calls) == 1 and torch.equal(calls[0], LENS)
    # Instead of min-max, not after it.
    torch.testing.assert_close(out, feats / 2)


@pytest.mark.parametrize("bad", ["cmvn", "Sentence", ""])
def test_unknown_feature_norm_names_the_options(bad):
    brain = _brain(feature_norm=bad)
    with pytest.raises(ValueError) as excinfo:
        _heads(brain, _wavs(), LENS)
    message = str(excinfo.value)
    assert "minmax" in message and "sentence" in message
    assert repr(bad) in message


# ----------------------------------------------------------------------------
# label_smoothing: the training loss only


def _objective(brain, logits, labels, stage, mixup=None):
    brain._labels = labels
    brain._mixup = mixup
    stage = getattr(sb.Stage, stage)
    return brain.compute_objectives(logits, None, stage)


LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.3, 1.5]])
LABELS = torch.tensor([0, 2])


@pytest.mark.parametrize("hparams", [{}, {"label_smoothing": 0.0}])
def test_no_label_smoothing_is_plain_cross_entropy(hparams):
    loss = _objective(_brain(**hparams), LOGITS, LABELS, "TRAIN")
    assert torch.equal(loss, torch.nn.functional.cross_entropy(LOGITS, LABELS))


def test_label_smoothing_changes_the_training_loss():
    brain = _brain(label_smoothing=0.1)
    loss = _objective(brain, LOGITS, LABELS, "TRAIN")
    # Hand-computed: 0.9 x NLL of the label + 0.1 x mean NLL over classes.
    logp = torch.log_softmax(LOGITS, dim=-1)
    nll = -logp[torch.arange(2), LABELS]
    expected = (0.9 * nll + 0.1 * -logp.mean(-1)).mean()
    torch.testing.assert_close(loss, expected)
    assert loss > torch.nn.functional.cross_entropy(LOGITS, LABELS)


def test_label_smoothing_applies_under_mixup():
    brain = _brain(label_smoothing=0.1)
    y_b = torch.tensor([1, 0])
    loss = _objective(brain, LOGITS, LABELS, "TRAIN", (LABELS, y_b, 0.7))
    expected = mixup_loss(LOGITS, LABELS, y_b, 0.7, label_smoothing=0.1)
    torch.testing.assert_close(loss, expected)
    assert not torch.allclose(loss, mixup_loss(LOGITS, LABELS, y_b, 0.7))


def test_label_smoothing_leaves_the_evaluation_loss_plain():
    brain = _brain(label_smoothing=0.1)
    appended = []
    brain.report = types.SimpleNamespace(
        append=lambda *args, **kwargs: appended.append(args)
    )
    brain._labels = LABELS
    batch = types.SimpleNamespace(id=["a", "b"], group=["s", "s"])
    loss = brain.compute_objectives(LOGITS, batch, sb.Stage.VALID)
    assert torch.equal(loss, torch.nn.functional.cross_entropy(LOGITS, LABELS))
    assert len(appended) == 1 and appended[0][0] == ["a", "b"]


def _heads(brain, wavs, lens):
    """The per-head representations the Brain's pipeline classifies."""
    pipeline = brain.pipeline
    return pipeline.split_heads(pipeline.represent(wavs, lens).weighted)
