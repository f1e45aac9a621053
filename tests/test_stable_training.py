"""The parts of the stabilised FSDD recipe (issue #16).

Waveform augmentation (training only, shapes and lengths kept,
reproducible for a seed), SpecAugment inside each clip's frames,
length-bucketed batches, the warm-up + cosine schedule, averaging of the
last epochs' checkpoints, and the benchmark's paired statistics against a
hand-computed example.
"""

import copy
import os
import types

import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.dataset import DynamicItemDataset

from speechbrain_relevance.augment import RandomShift, spec_augment
from speechbrain_relevance.cli import load_hparams
from speechbrain_relevance.data.audio import load_audio
from speechbrain_relevance.errors import ConfigError
from speechbrain_relevance.models import CompactCNN
from speechbrain_relevance.training import (
    AtomicCheckpointer,
    WarmupCosineScheduler,
)
from speechbrain_relevance.training.brain import (
    AVERAGED_KEY,
    RelevanceBrain,
    length_bucket_sampler,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FSDD_HPARAMS = os.path.join(REPO, "recipes", "FSDD", "hparams")
FSDD_YAMLS = sorted(n for n in os.listdir(FSDD_HPARAMS) if n.endswith(".yaml"))
CLIPS = os.path.join(REPO, "tests", "data", "fsdd", "recordings")


def _fsdd_hparams(name="mel_baseline.yaml", **overrides):
    with open(os.path.join(FSDD_HPARAMS, name), encoding="utf-8") as f:
        return load_hyperpyyaml(
            f, {"data_folder": "unused", "test_fold": "theo", **overrides}
        )


def _real_batch():
    """Three real clips of different lengths, padded, with lengths."""
    names = ["0_lucas_0.wav", "8_lucas_2.wav", "0_lucas_2.wav"]
    clips = [
        load_audio(os.path.join(CLIPS, n), sample_rate=8000) for n in names
    ]
    longest = max(c.shape[0] for c in clips)
    wavs = torch.stack(
        [torch.nn.functional.pad(c, (0, longest - c.shape[0])) for c in clips]
    )
    lens = torch.tensor([c.shape[0] / longest for c in clips])
    return wavs, lens


def test_random_shift_keeps_every_sample_and_the_lengths():
    wavs, lens = _real_batch()
    torch.manual_seed(3)
    out, out_lens = RandomShift(max_shift=400)(wavs, lens)
    assert out.shape[0] == 3
    assert wavs.shape[1] <= out.shape[1] <= wavs.shape[1] + 400
    assert out_lens.max() == 1.0
    n_in = (lens * wavs.shape[1]).round().long()
    n_out = (out_lens * out.shape[1]).round().long()
    for i in range(3):
        shift = int(n_out[i] - n_in[i])
        assert 0 <= shift <= 400
        # The clip, intact, after `shift` zeros; zeros after it.
        assert torch.equal(out[i, :shift], torch.zeros(shift))
        assert torch.equal(out[i, shift:shift + n_in[i]], wavs[i, :n_in[i]])
        assert not out[i, shift + n_in[i]:].any()


def test_random_shift_rejects_a_fractional_shift():
    with pytest.raises(ValueError, match="whole number of samples"):
        RandomShift(max_shift=2.5)


@pytest.mark.parametrize(
    "hparams", ["mel_baseline.yaml", "relevance_2head.yaml"]
)
def test_fsdd_waveform_augmentation_keeps_shapes_and_is_seeded(hparams):
    augment = _fsdd_hparams(hparams)["wav_augment"]
    wavs, lens = _real_batch()
    outs = []
    for _ in range(2):
        sb.utils.seed_everything(7)
        outs.append([augment(wavs, lens) for _ in range(5)])
    for (a, a_lens), (b, b_lens) in zip(*outs):
        # Deterministic for a seed.
        assert torch.equal(a, b) and torch.equal(a_lens, b_lens)
        # Still a [batch, time] batch with relative lengths.
        assert a.dim() == 2 and a.shape[0] == 3
        assert ((a_lens > 0) & (a_lens <= 1.0)).all()
        assert torch.isclose(a_lens.max(), torch.tensor(1.0), atol=1e-3)
        assert torch.isfinite(a).all()
    # ... and it does change the audio.
    assert any(
        a.shape != wavs.shape or not torch.equal(a, wavs)
        for a, _ in outs[0]
    )


def _tiny_brain(**hparams):
    modules = {
        "compute_features": _fsdd_hparams()["compute_features"],
        "classifier": CompactCNN(n_bands=40, n_classes=10, channels=[4]),
    }
    base = {
        "labels": [str(d) for d in range(10)],
        "wav_augment": _fsdd_hparams()["wav_augment"],
        "freq_mask_max": 6,
        "time_mask_max": 8,
    }
    base.update(hparams)
    return RelevanceBrain(
        modules=modules, hparams=base, run_opts={"device": "cpu"}
    )


def test_augmentation_runs_in_training_only():
    brain = _tiny_brain()
    wavs, lens = _real_batch()
    brain._labels = torch.tensor([0, 8, 0])
    for stage in (sb.Stage.VALID, sb.Stage.TEST):
        out, out_lens = brain.augment_waveforms(wavs, lens, stage)
        assert out is wavs and out_lens is lens
        heads = [torch.rand(3, 20, 40)]
        assert brain.augment_representation(heads, lens, stage) is heads
    torch.manual_seed(0)
    trained = [brain.augment_waveforms(wavs, lens, sb.Stage.TRAIN)
               for _ in range(4)]
    assert any(not torch.equal(w, wavs) for w, _ in trained)
    heads = [torch.rand(3, 20, 20), torch.rand(3, 20, 20)]
    masked = brain.augment_representation(heads, lens, sb.Stage.TRAIN)
    assert [m.shape for m in masked] == [h.shape for h in heads]
    # Some bins are masked to 0, at the same frames in both heads.
    assert any((m == 0).any() for m in masked)
    zero_frames = [(m == 0).all(dim=2) for m in masked]
    assert torch.equal(zero_frames[0], zero_frames[1])


def test_evaluation_is_deterministic_with_augmentation_configured():
    brain = _tiny_brain()
    brain.modules.eval()
    wavs, lens = _real_batch()
    batch = types.SimpleNamespace(
        sig=(wavs, lens),
        label=types.SimpleNamespace(data=torch.tensor([0, 8, 0])),
        to=lambda device: batch,
    )
    with torch.no_grad():
        a = brain.compute_forward(batch, sb.Stage.TEST)
        b = brain.compute_forward(batch, sb.Stage.TEST)
    assert torch.equal(a, b)


def test_spec_augment_time_masks_fall_on_real_frames():
    x = torch.ones(64, 1, 10, 100)
    lens = torch.full((64,), 0.3)
    g = torch.Generator().manual_seed(0)
    out = spec_augment(
        x, freq_mask_max=0, time_mask_max=20, generator=g, lengths=lens
    )
    masked_frames = (out == 0).all(dim=2).squeeze(1)
    assert masked_frames.any()
    # Only the first 30 frames are real: no mask beyond them.
    assert not masked_frames[:, 30:].any()
    # Without lengths, masks also land on the padding.
    g = torch.Generator().manual_seed(0)
    out = spec_augment(x, freq_mask_max=0, time_mask_max=20, generator=g)
    assert (out == 0).all(dim=2).squeeze(1)[:, 30:].any()


def test_length_bucket_sampler_covers_every_clip_once_per_epoch():
    durations = [0.2 + 0.01 * (i % 97) for i in range(300)]
    data = DynamicItemDataset(
        {f"c{i}": {"duration": d} for i, d in enumerate(durations)}
    )
    options = {
        "max_batch_length": 4.0,
        "bucket_boundaries": [0.4, 0.6, 0.8, 1.2],
        "max_batch_ex": 16,
    }
    sampler = length_bucket_sampler(data, options, seed=1)
    epochs = []
    for epoch in (1, 2, 1):
        sampler.set_epoch(epoch)
        batches = [list(b) for b in sampler]
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(300))
        # A batch holds at most max_batch_length seconds (by bucket).
        for b in batches:
            assert len(b) <= 16
            assert sum(durations[i] for i in b) <= 4.0 + 1e-9
        epochs.append(batches)
    assert epochs[0] != epochs[1]  # new batches each epoch
    assert epochs[0] == epochs[2]  # reproducible for (seed, epoch)


@pytest.mark.parametrize("name", FSDD_YAMLS)
def test_max_batch_length_key_sets_the_batches(name):
    # One top-level key sets the batches of every FSDD recipe: half
    # batches (7 s) by default, the older 14 s on request.
    half = _fsdd_hparams(name)
    full = _fsdd_hparams(name, max_batch_length=14.0)
    assert half["dynamic_batching"]["max_batch_length"] == 7.0
    assert full["dynamic_batching"]["max_batch_length"] == 14.0
    data = DynamicItemDataset(
        {f"c{i}": {"duration": 0.3 + 0.001 * (i % 1000)} for i in range(2000)}
    )
    count = [
        len(list(length_bucket_sampler(data, h["dynamic_batching"], seed=1)))
        for h in (full, half)
    ]
    assert 1.8 * count[0] <= count[1] <= 2.2 * count[0]


@pytest.mark.parametrize("name", FSDD_YAMLS)
def test_speeds_key_sets_the_speed_perturbation(name):
    hp = _fsdd_hparams(name)
    wide = _fsdd_hparams(name, speeds=[80, 100, 120])
    assert hp["speed_perturb"].speeds == [90, 95, 100, 105, 110]
    assert wide["speed_perturb"].speeds == [80, 100, 120]
    # The augmenter perturbs with the object the key configured.
    assert any(a is wide["speed_perturb"]
               for a in wide["wav_augment"].augmentations.values())


@pytest.mark.parametrize("name", FSDD_YAMLS)
def test_weight_decay_key_sets_the_optimizer(name):
    params = [torch.nn.Parameter(torch.ones(3))]
    plain = _fsdd_hparams(name)["opt_class"](params)
    decayed = _fsdd_hparams(name, weight_decay=0.05)["opt_class"](params)
    assert isinstance(plain, torch.optim.AdamW)
    assert plain.defaults["weight_decay"] == 0.0
    assert decayed.defaults["weight_decay"] == 0.05
    assert _fsdd_hparams(name)["label_smoothing"] == 0.0


def test_adamw_without_decay_makes_adams_updates():
    # The yamls' claim: runs stored with Adam are runs of AdamW(decay=0).
    torch.manual_seed(0)
    nets = [torch.nn.Linear(4, 3)]
    nets.append(copy.deepcopy(nets[0]))
    opts = [
        torch.optim.Adam(nets[0].parameters(), lr=3e-3),
        torch.optim.AdamW(nets[1].parameters(), lr=3e-3, weight_decay=0.0),
    ]
    for step in range(20):
        x = torch.randn(5, 4)
        for net, opt in zip(nets, opts):
            opt.param_groups[0]["lr"] = 3e-3 / (1 + step)
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)


def test_length_bucket_sampler_names_unknown_options():
    data = DynamicItemDataset({"a": {"duration": 0.5}})
    with pytest.raises(ConfigError, match="max_batch_lenght"):
        length_bucket_sampler(data, {"max_batch_lenght": 3.0})


def test_warmup_cosine_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = WarmupCosineScheduler(total=12, warmup=1)
    lrs = [sched.step(opt, epoch=e)[1] for e in (0, 0.5, 1, 6.5, 12)]
    assert lrs == pytest.approx([0.0, 0.05, 0.1, 0.05, 0.0])
    # A one-epoch run warms up for half of it, then decays.
    short = WarmupCosineScheduler(total=1, warmup=1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    assert short.step(opt, epoch=0.5)[1] == pytest.approx(0.1)
    assert short.step(opt, epoch=1.0)[1] == pytest.approx(0.0)


def test_warmup_cosine_schedule_with_a_constant_tail():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = WarmupCosineScheduler(total=12, warmup=1, hold=4, hold_scale=0.2)
    lrs = [sched.step(opt, epoch=e)[1] for e in (0.5, 1, 4.5, 8, 10, 12)]
    # The decay reaches 0.02 at epoch 8 and stays there for the last 4.
    assert lrs == pytest.approx([0.05, 0.1, 0.06, 0.02, 0.02, 0.02])
    # The yaml's keys are named in the errors.
    for key, value in (("lr_hold", 12), ("lr_hold_scale", 2)):
        with pytest.raises(ConfigError, match=key):
            load_hparams(
                os.path.join(FSDD_HPARAMS, "mel_baseline.yaml"),
                "data_folder: /x\ntest_fold: theo\nnumber_of_epochs: 12\n"
                f"{key}: {value}",
            )


def _clip_set(names):
    data = DynamicItemDataset({
        n: {"wav": os.path.join(CLIPS, n), "label": int(n[0])}
        for n in names
    })

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def sig(wav):
        return load_audio(wav, sample_rate=8000)

    @sb.utils.data_pipeline.takes("label")
    @sb.utils.data_pipeline.provides("label")
    def label(value):
        return torch.tensor(value)

    data.add_dynamic_item(sig)
    data.add_dynamic_item(label)
    data.set_output_keys(["id", "sig", "label"])
    return data


class _ForwardBatch(torch.nn.Module):
    """The Brain's clean forward pass as a module of a batch (update_bn)."""

    def __init__(self, brain):
        super().__init__()
        self.brain = brain
        self.inner = brain.modules

    def forward(self, batch):
        return self.brain.compute_forward(batch, sb.Stage.VALID)


def test_recomputed_batchnorm_statistics_are_those_of_the_average(tmp_path):
    names = sorted(os.listdir(CLIPS))[:12]
    train = _clip_set(names)
    brain = _tiny_brain(average_checkpoints=2, recompute_batchnorm=True)
    ckpter = AtomicCheckpointer(str(tmp_path), dict(brain.modules))
    brain.checkpointer = ckpter
    norm = brain.modules["classifier"].blocks[0][1]
    for epoch in (1, 2):
        with torch.no_grad():
            for p in brain.modules.parameters():
                p.add_(0.1 * torch.randn_like(p))
            norm.running_mean.fill_(5.0 * epoch)  # far from the truth
        ckpter.save_and_keep_only(
            meta={"acc": 0.5, "epoch": epoch}, num_to_keep=2,
            ckpt_predicate=lambda c: AVERAGED_KEY not in c.meta,
        )
    assert brain.average_last_checkpoints(train, {"batch_size": 4}) == [1, 2]
    # PyTorch's own SWA pass over the same batches gives the same statistics.
    reference = copy.deepcopy(_ForwardBatch(brain))
    loader = sb.dataio.dataloader.make_dataloader(train, batch_size=4)
    torch.optim.swa_utils.update_bn(loader, reference)
    ref_norm = reference.inner["classifier"].blocks[0][1]
    assert not torch.allclose(norm.running_mean, torch.full((4,), 7.5))
    assert torch.allclose(norm.running_mean, ref_norm.running_mean, atol=1e-6)
    assert torch.allclose(norm.running_var, ref_norm.running_var, atol=1e-6)
    assert norm.momentum == 0.1  # restored
    # They are what the saved average holds.
    recomputed = norm.running_mean.clone()
    with torch.no_grad():
        norm.running_mean.zero_()
    ckpter.recover_if_possible()
    assert torch.equal(norm.running_mean, recomputed)


def test_recompute_batchnorm_needs_averaging_and_a_bool():
    for hparams, needle in (
        ({"recompute_batchnorm": True}, "average_checkpoints > 1"),
        ({"recompute_batchnorm": "yes", "average_checkpoints": 3},
         "True or False"),
    ):
        brain = _tiny_brain(**hparams)
        with pytest.raises(ConfigError, match=needle):
            brain.recomputes_batchnorm()


def _save_epoch(ckpter, model, value, epoch, acc):
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    ckpter.save_and_keep_only(
        meta={"acc": acc, "epoch": epoch}, num_to_keep=3,
        ckpt_predicate=lambda c: AVERAGED_KEY not in c.meta,
    )


def test_average_of_the_last_checkpoints(tmp_path):
    model = torch.nn.Linear(2, 2)
    ckpter = AtomicCheckpointer(str(tmp_path), {"classifier": model})
    brain = RelevanceBrain(
        modules={"classifier": model},
        hparams={"labels": ["a", "b"], "average_checkpoints": 3},
        run_opts={"device": "cpu"},
        checkpointer=ckpter,
    )
    for epoch, value in enumerate([10.0, 1.0, 2.0, 6.0], start=1):
        _save_epoch(ckpter, model, value, epoch, acc=0.1 * epoch)
    assert brain.average_last_checkpoints() == [2, 3, 4]
    # The mean of the last three epochs (1, 2, 6), not the best or last.
    assert torch.allclose(model.weight, torch.full((2, 2), 3.0))
    # One checkpoint is left, the average, and it is what loads.
    ckpts = ckpter.find_checkpoints()
    assert len(ckpts) == 1 and ckpts[0].meta[AVERAGED_KEY] == [2, 3, 4]
    with torch.no_grad():
        model.weight.zero_()
    ckpter.recover_if_possible()
    assert torch.allclose(model.weight, torch.full((2, 2), 3.0))
    # Started again (a finished run resumed), it keeps the average.
    assert brain.average_last_checkpoints() == [2, 3, 4]
    assert len(ckpter.find_checkpoints()) == 1


def test_average_checkpoints_must_be_a_count():
    brain = RelevanceBrain(
        modules={"classifier": torch.nn.Linear(1, 1)},
        hparams={"labels": ["a"], "average_checkpoints": 0},
        run_opts={"device": "cpu"},
    )
    with pytest.raises(ConfigError, match="average_checkpoints"):
        brain.n_averaged()
