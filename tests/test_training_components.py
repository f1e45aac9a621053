"""Tests of augmentation, LR schedules, metrics and DDP helpers."""

import json
import math

import pytest
import speechbrain as sb
import torch
import torch.distributed as dist
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_relevance.augment import (
    mixup,
    mixup_loss,
    random_crop,
    spec_augment,
)
from speechbrain_relevance.training import (
    ClassificationReport,
    StepDecayScheduler,
    SyncBatchNormControl,
    WarmRestartsScheduler,
    resolve_sync_batchnorm,
)

# ---------------------------------------------------------------- helpers


def intervals(mask):
    """Start and width of the True run of a 1-D bool tensor (one run)."""
    idx = mask.nonzero().flatten()
    if len(idx) == 0:
        return None, 0
    assert (idx.diff() == 1).all(), "mask is not one contiguous interval"
    return int(idx[0]), len(idx)


def band_and_frame_masks(y):
    """Masked bands / frames of a [batch, C, F, T] output of ones-input.

    A band is frequency-masked if it is zero in every frame, a frame is
    time-masked if it is zero in every band (masks never cover everything).
    """
    zero = y == 0
    bands = zero.all(dim=-1)  # [B, C, F]
    frames = zero.all(dim=-2)  # [B, C, T]
    return bands, frames


# ----------------------------------------------------------- spec_augment


def test_spec_augment_one_mask_each_with_bounded_widths():
    g = torch.Generator().manual_seed(0)
    x = torch.ones(300, 3, 80, 100)
    y = spec_augment(x, freq_mask_max=12, time_mask_max=39, generator=g)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert (x == 1).all()  # input untouched
    bands, frames = band_and_frame_masks(y)
    # Every channel masked at the same positions.
    assert (bands == bands[:, :1]).all() and (frames == frames[:, :1]).all()
    f_widths, t_widths = [], []
    for b in range(x.shape[0]):
        _, fw = intervals(bands[b, 0])
        _, tw = intervals(frames[b, 0])
        f_widths.append(fw)
        t_widths.append(tw)
        # Nothing else is masked: zeros = union of the two intervals.
        expected = bands[b, 0][:, None] | frames[b, 0][None, :]
        assert torch.equal(y[b, 0] == 0, expected)
    assert max(f_widths) == 12 and min(f_widths) == 0
    assert max(t_widths) == 39 and min(t_widths) == 0
    # Widths are uniform-ish on {0..max}: every value occurs.
    assert set(f_widths) == set(range(13))


def test_spec_augment_mask_positions_cover_the_axis():
    g = torch.Generator().manual_seed(1)
    y = spec_augment(torch.ones(400, 1, 20, 100), 12, 39, generator=g)
    bands, frames = band_and_frame_masks(y)
    spans = [intervals(bands[b, 0]) for b in range(400)]
    starts = {start for start, width in spans if width}
    ends = {start + width for start, width in spans if width}
    assert 0 in starts and 20 in ends  # both edges reachable
    tspans = [intervals(frames[b, 0]) for b in range(400)]
    assert 0 in {s for s, w in tspans if w}
    assert 100 in {s + w for s, w in tspans if w}


def test_spec_augment_aligned_concat_semantics():
    g = torch.Generator().manual_seed(2)
    heads = [torch.ones(200, 3, 40, 120), torch.ones(200, 3, 40, 120)]
    out = spec_augment(heads, aligned=True, generator=g)
    assert isinstance(out, list) and len(out) == 2
    b0, t0 = band_and_frame_masks(out[0])
    b1, t1 = band_and_frame_masks(out[1])
    assert torch.equal(t0, t1)  # same frames in every head
    where = {"head 1": 0, "head 2": 0, "both": 0}
    for b in range(200):
        # One interval of at most 12 bands on the concatenated 80 bands.
        _, width = intervals(torch.cat([b0[b, 0], b1[b, 0]]))
        assert width <= 12
        in0, in1 = bool(b0[b, 0].any()), bool(b1[b, 0].any())
        if in0 and in1:
            where["both"] += 1
            assert b0[b, 0, -1] and b1[b, 0, 0]  # it straddles the border
        elif in0 or in1:
            where["head 1" if in0 else "head 2"] += 1
    assert all(count > 0 for count in where.values())


def test_spec_augment_aligned_per_head_semantics():
    g = torch.Generator().manual_seed(3)
    heads = [torch.ones(32, 3, 40, 120), torch.ones(32, 3, 40, 120)]
    out = spec_augment(heads, generator=g, freq_positions="per_head")
    b0, t0 = band_and_frame_masks(out[0])
    b1, t1 = band_and_frame_masks(out[1])
    assert torch.equal(b0, b1) and torch.equal(t0, t1)
    assert torch.equal(out[0], out[1])


def test_spec_augment_not_aligned_draws_per_head():
    g = torch.Generator().manual_seed(4)
    heads = [torch.ones(32, 3, 40, 120), torch.ones(32, 3, 40, 120)]
    out = spec_augment(heads, aligned=False, generator=g)
    b0, t0 = band_and_frame_masks(out[0])
    b1, t1 = band_and_frame_masks(out[1])
    assert not torch.equal(t0, t1) and not torch.equal(b0, b1)
    for b in range(32):
        for bands, frames in ((b0, t0), (b1, t1)):
            assert intervals(bands[b, 0])[1] <= 12
            assert intervals(frames[b, 0])[1] <= 39


def test_spec_augment_reproducible_and_keeps_dtype():
    x = torch.rand(4, 3, 40, 50, dtype=torch.float64)
    y1 = spec_augment(x, generator=torch.Generator().manual_seed(5))
    y2 = spec_augment(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(y1, y2) and y1.dtype == torch.float64
    torch.manual_seed(6)
    z1 = spec_augment([x.half()])
    torch.manual_seed(6)
    z2 = spec_augment([x.half()])
    assert torch.equal(z1[0], z2[0]) and z1[0].dtype == torch.float16


# ------------------------------------------------------------ random_crop


def test_random_crop_same_start_across_heads():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(423.0)
    h0 = t.expand(50, 3, 40, 423).clone()
    h1 = h0 + 1000.0
    out = random_crop([h0, h1], n_frames=400, generator=g)
    assert [o.shape for o in out] == [(50, 3, 40, 400)] * 2
    starts = out[0][:, 0, 0, 0]
    # Consecutive frames starting at a per-example start, same in both heads.
    expected = starts[:, None] + torch.arange(400.0)
    assert torch.equal(out[0][:, 1, 7], expected)
    assert torch.equal(out[1] - out[0], torch.full_like(out[0], 1000.0))
    assert starts.min() >= 0 and starts.max() <= 23
    assert len(set(starts.tolist())) > 5  # starts differ between examples


def test_random_crop_noop_when_short():
    x = torch.randn(2, 3, 8, 400)
    assert random_crop(x, 400) is x
    heads = [torch.randn(2, 3, 8, 10)]
    assert random_crop(heads, 400)[0] is heads[0]
    assert random_crop(torch.randn(2, 3, 8, 401), 400).shape[-1] == 400


# ------------------------------------------------------------------ mixup


def test_mixup_arithmetic_and_reproducibility():
    x = torch.randn(16, 3, 8, 20)
    y = torch.arange(16)
    out1 = mixup(x, y, alpha=0.4, generator=torch.Generator().manual_seed(0))
    out2 = mixup(x, y, alpha=0.4, generator=torch.Generator().manual_seed(0))
    x_mix, y_a, y_b, lam = out1
    assert 0.0 < lam < 1.0 and isinstance(lam, float)
    assert torch.equal(y_a, y)
    assert sorted(y_b.tolist()) == list(range(16))  # a permutation
    torch.testing.assert_close(x_mix, lam * x + (1 - lam) * x[y_b])
    assert torch.equal(out2[0], x_mix) and out2[3] == lam
    assert x_mix.dtype == x.dtype


def test_mixup_lambda_distribution_and_alpha_zero():
    g = torch.Generator().manual_seed(1)
    lams = [
        mixup(torch.zeros(2, 1), torch.zeros(2), 0.4, g)[3] for _ in range(2000)
    ]
    mean = sum(lams) / len(lams)
    assert abs(mean - 0.5) < 0.03  # Beta(a, a) has mean 1/2
    # Beta(0.4, 0.4) is U-shaped: most mass near 0 and 1.
    assert sum(lam < 0.1 or lam > 0.9 for lam in lams) / len(lams) > 0.4
    x = torch.randn(4, 2)
    x_mix, _, _, lam = mixup(x, torch.arange(4), alpha=0.0)
    assert lam == 1.0 and torch.equal(x_mix, x)


def test_mixup_loss_is_weighted_cross_entropy():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    y_a, y_b = torch.tensor([1, 2]), torch.tensor([0, 1])
    lam = 0.3

    def ce(t):
        lp = torch.log_softmax(logits, -1)
        return -(lp[0, t[0]] + lp[1, t[1]]) / 2

    expected = lam * ce(y_a) + (1 - lam) * ce(y_b)
    torch.testing.assert_close(mixup_loss(logits, y_a, y_b, lam), expected)
    torch.testing.assert_close(
        mixup_loss(logits, y_a, y_b, 1.0),
        torch.nn.functional.cross_entropy(logits, y_a),
    )
    per_example = mixup_loss(logits, y_a, y_b, lam, reduction="none")
    assert per_example.shape == (2,)


# ------------------------------------------------------------- schedulers


def make_opt(lr=0.1, groups=1):
    params = [
        {"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)
    ]
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def test_warm_restarts_values_at_restarts():
    sched = WarmRestartsScheduler(T_0=1, T_mult=2, eta_min=1e-5)
    assert sched.restart_epochs(130) == [1, 3, 7, 15, 31, 63, 127]
    opt = make_opt()
    n_batches = 437
    for epoch in [0, 1, 3, 7, 15, 31, 63, 127]:
        sched.step(opt, epoch, 0, n_batches)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.1, abs=1e-12)
        # Last batch before the next restart is close to eta_min.
        nxt = 2 * epoch + 1
        sched.step(opt, nxt - 1, n_batches - 1, n_batches)
        t_i = epoch + 1
        frac = 1 - 1 / (n_batches * t_i)
        expected = 1e-5 + (0.1 - 1e-5) * (1 + math.cos(math.pi * frac)) / 2
        assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-9)
        assert opt.param_groups[0]["lr"] < 1e-4
    # Middle of the 4th period (starts at 7, length 8): epoch 11.
    sched.step(opt, 11, 0, n_batches)
    assert opt.param_groups[0]["lr"] == pytest.approx((0.1 + 1e-5) / 2)


def test_warm_restarts_matches_torch_with_fractional_epochs():
    ours = WarmRestartsScheduler(T_0=1, T_mult=2, eta_min=1e-5)
    opt_ours = make_opt()
    opt_torch = make_opt()
    ref = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt_torch, T_0=1, T_mult=2, eta_min=1e-5
    )
    n_batches = 7
    for epoch in range(20):
        for i in range(n_batches):
            ours.step(opt_ours, epoch, i, n_batches)
            ref.step(epoch + i / n_batches)
            assert opt_ours.param_groups[0]["lr"] == pytest.approx(
                opt_torch.param_groups[0]["lr"], rel=1e-9, abs=1e-12
            )


def test_warm_restarts_t_mult_one_and_lr_max():
    sched = WarmRestartsScheduler(T_0=2, T_mult=1, eta_min=0.0, lr_max=1.0)
    opt = make_opt(lr=123.0, groups=2)
    assert sched.step(opt, 1, 0, 1)[1] == pytest.approx(0.5)
    assert sched.step(opt, 4, 0, 1)[1] == pytest.approx(1.0)
    assert [g["lr"] for g in opt.param_groups] == [1.0, 1.0]
    with pytest.raises(ValueError):
        WarmRestartsScheduler(T_mult=1.5)


def test_scheduler_checkpoint_restores_exact_position(tmp_path):
    sched = WarmRestartsScheduler(T_0=1, T_mult=2, eta_min=1e-5)
    opt = make_opt(lr=0.1, groups=2)
    n_batches = 13
    for epoch in range(3):
        for i in range(n_batches):
            sched.step(opt, epoch, i, n_batches)
    sched.step(opt, 3, 5, n_batches)
    position, lrs = sched.last_epoch, [g["lr"] for g in opt.param_groups]

    ckpt = Checkpointer(tmp_path, recoverables={"sched": sched, "opt": opt})
    ckpt.save_checkpoint()

    # A fresh run: new scheduler and optimizer built with the max lr.
    sched2 = WarmRestartsScheduler(T_0=1, T_mult=2, eta_min=1e-5)
    opt2 = make_opt(lr=0.1, groups=2)
    ckpt2 = Checkpointer(tmp_path, recoverables={"sched": sched2, "opt": opt2})
    assert ckpt2.recover_if_possible() is not None
    assert sched2.last_epoch == position
    assert sched2.base_lrs == [0.1, 0.1]
    assert sched2.get_last_lr() == lrs
    assert [g["lr"] for g in opt2.param_groups] == lrs
    # Continuing gives exactly what the uninterrupted run gives.
    for i in range(6, n_batches):
        assert sched2.step(opt2, 3, i, n_batches) == sched.step(
            opt, 3, i, n_batches
        )


def test_scheduler_checkpoint_keeps_max_lr_after_decay(tmp_path):
    # The saved maximum lr matters when the restored optimizer's lr has
    # already been decayed (the optimizer state is restored too).
    sched = StepDecayScheduler(step_size=10, gamma=0.1)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    for epoch in range(15):
        sched.step(opt, epoch)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)
    Checkpointer(tmp_path, recoverables={"sched": sched}).save_checkpoint()

    sched2 = StepDecayScheduler(step_size=10, gamma=0.1)
    opt2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    Checkpointer(tmp_path, recoverables={"sched": sched2}).recover_if_possible()
    assert sched2.base_lrs == [1e-3] and sched2.last_epoch == 14
    assert sched2.step(opt2, 20)[1] == pytest.approx(1e-5)


def test_step_decay_values():
    sched = StepDecayScheduler(step_size=10, gamma=0.1)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    lrs = [sched.step(opt, e)[1] for e in range(30)]
    assert lrs[:10] == [1e-3] * 10
    assert lrs[10:20] == pytest.approx([1e-4] * 10)
    assert lrs[20:] == pytest.approx([1e-5] * 10)


# ---------------------------------------------------------------- metrics


def tiny_report():
    labels = ["airport", "bus", "metro"]
    report = ClassificationReport(
        labels, {"airport": "AP", "bus": "BS", "metro": "MT"}, inputs="probs"
    )
    probs = torch.tensor(
        [
            [0.7, 0.2, 0.1],  # airport -> airport
            [0.2, 0.5, 0.3],  # airport -> bus
            [0.1, 0.8, 0.1],  # bus -> bus
            [0.25, 0.25, 0.5],  # metro -> metro
        ]
    )
    report.append(["c1", "c2"], probs[:2], [0, 0], groups=["a", "b"])
    report.append(["c3", "c4"], probs[2:], torch.tensor([1, 2]), ["a", "s1"])
    return report


def test_metrics_hand_computed():
    s = tiny_report().summarize()
    assert s["n"] == 4
    assert s["accuracy"] == pytest.approx(0.75)
    assert s["class_accuracy"] == {"airport": 0.5, "bus": 1.0, "metro": 1.0}
    assert s["macro_accuracy"] == pytest.approx(2.5 / 3)
    expected_ll = (
        -(math.log(0.7) + math.log(0.2) + math.log(0.8) + math.log(0.5)) / 4
    )
    assert s["log_loss"] == pytest.approx(expected_ll)
    assert s["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert s["group_accuracy"] == {
        "a": {"accuracy": 1.0, "n": 2},
        "b": {"accuracy": 0.0, "n": 1},
        "s1": {"accuracy": 1.0, "n": 1},
    }


def test_metrics_logits_and_clipping():
    report = ClassificationReport(labels=["x", "y"])
    logits = torch.tensor([[0.0, math.log(3.0)], [100.0, -100.0]])
    report.append([1, 2], logits, [1, 1])
    s = report.summarize()
    # p(y) = 3/4 for the first; the second is clipped at eps = 1e-15.
    assert s["log_loss"] == pytest.approx(
        (-math.log(0.75) - math.log(1e-15)) / 2
    )
    assert "group_accuracy" not in s
    assert s["class_accuracy"]["x"] != s["class_accuracy"]["x"]  # NaN
    assert report.to_dict()["class_accuracy"]["x"] is None


def test_metrics_markdown_table_format():
    md = tiny_report().to_markdown(name="Cos-Gauss + 2head-rel.")
    lines = md.splitlines()
    assert lines[2] == "| Representation | AP | BS | MT | Avg |"
    assert lines[3] == "|---|---:|---:|---:|---:|"
    assert (
        lines[4] == "| Cos-Gauss + 2head-rel. | 50.0 | 100.0 | 100.0 | 83.3 |"
    )
    assert "- Accuracy (%): 75.0" in lines
    assert "| s1 | 1 | 100.0 |" in lines
    # Labels without an abbreviation keep their name.
    report = ClassificationReport(labels=["airport", "jackhammer"])
    report.append([0], torch.tensor([[1.0, 0.0]]), [0])
    assert report.to_markdown().splitlines()[2] == (
        "| Representation | airport | jackhammer | Avg |"
    )


def test_metrics_write(tmp_path):
    md, js = tiny_report().write(tmp_path / "out", "dev_results", name="Mel")
    assert md.endswith("dev_results.md") and js.endswith("dev_results.json")
    data = json.loads(open(js).read())
    assert data["accuracy"] == pytest.approx(0.75)
    assert data["labels"] == ["airport", "bus", "metro"]
    assert "| Mel |" in open(md).read()


def test_metrics_gather_in_a_real_single_process_group(single_process_group):
    report = ClassificationReport(labels=["a", "b"], inputs="probs")
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.9, 0.1]])
    report.append(["x0", "x1", "x0"], probs, [0, 1, 0])
    report.gather()
    assert report.ids == ["x0", "x1"]
    assert report.summarize()["n"] == 2


def test_metrics_gather_two_ranks(monkeypatch, tmp_path):
    # Two ranks simulated in one process: all_gather_object hands every
    # rank the local results of both, in rank order. (Spawning two real
    # processes costs ~10 s of imports.)
    def make(ids, targets):
        r = ClassificationReport(labels=["a", "b"], inputs="probs")
        r.append(
            ids, torch.tensor([[0.9, 0.1], [0.2, 0.8]]), targets, ["d", "e"]
        )
        return r

    rank0 = make(["x0", "x2"], [0, 1])
    # Rank 1 sees "x0" again: DistributedSampler pads the last shard.
    rank1 = make(["x1", "x0"], [1, 0])
    shard1 = (rank1.ids, rank1._prob_matrix(), rank1.targets, rank1.groups)

    def fake_all_gather_object(shards, local):
        shards[:] = [local, shard1]

    import speechbrain_relevance.training.metrics as metrics

    monkeypatch.setattr(metrics, "is_distributed_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "all_gather_object", fake_all_gather_object)
    rank0.gather()
    assert rank0.ids == ["x0", "x2", "x1"]
    s = rank0.summarize()
    assert s["n"] == 3 and s["accuracy"] == pytest.approx(2 / 3)
    assert s["group_accuracy"]["d"] == {"accuracy": 0.5, "n": 2}

    # Only the main process writes.
    monkeypatch.setattr(metrics, "if_main_process", lambda: False)
    assert rank0.write(tmp_path, "results") is None
    assert not (tmp_path / "results.json").exists()


# ------------------------------------------------------------ distributed


class TinyBrain(SyncBatchNormControl, sb.Brain):
    def compute_forward(self, batch, stage):
        return self.modules.model(batch)

    def compute_objectives(self, predictions, batch, stage):
        return predictions.mean()


@pytest.fixture
def single_process_group(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    dist.init_process_group(
        "gloo",
        init_method=f"file://{tmp_path / 'pg'}",
        rank=0,
        world_size=1,
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


def make_model():
    return torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU()
    )


def test_plain_brain_fails_on_cpu_ddp_with_batchnorm(single_process_group):
    brain = sb.Brain(
        modules={"model": make_model()},
        run_opts={"device": "cpu", "distributed_backend": "gloo"},
    )
    with pytest.raises(ValueError, match="SyncBatchNorm"):
        brain._wrap_distributed()


@pytest.mark.parametrize("setting", [None, False])
def test_sync_batchnorm_control_wraps_without_conversion(
    single_process_group, setting
):
    brain = TinyBrain(
        modules={"model": make_model(), "frozen": torch.nn.Linear(2, 2)},
        hparams={"sync_batchnorm": setting},
        run_opts={"device": "cpu", "distributed_backend": "gloo"},
    )
    brain.modules.frozen.requires_grad_(False)
    brain._wrap_distributed()
    wrapped = brain.modules["model"]
    assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
    assert not any(
        isinstance(m, torch.nn.SyncBatchNorm) for m in wrapped.modules()
    )
    assert isinstance(brain.modules["frozen"], torch.nn.Linear)
    loss = wrapped(torch.randn(5, 4)).mean()
    loss.backward()


def test_sync_batchnorm_true_on_cpu_is_a_clear_error(single_process_group):
    brain = TinyBrain(
        modules={"model": make_model()},
        hparams={"sync_batchnorm": True},
        run_opts={"device": "cpu", "distributed_backend": "gloo"},
    )
    with pytest.raises(ValueError, match="needs an accelerator"):
        brain._wrap_distributed()


def test_resolve_sync_batchnorm():
    assert resolve_sync_batchnorm(None, "cpu") is False
    assert resolve_sync_batchnorm(None, "cuda:1") is True
    assert resolve_sync_batchnorm(True, "cuda") is True
    assert resolve_sync_batchnorm(False, "cuda") is False


def test_mixin_outside_ddp_defers_to_brain():
    brain = TinyBrain(
        modules={"model": make_model()}, run_opts={"device": "cpu"}
    )
    brain._wrap_distributed()
    assert isinstance(brain.modules["model"], torch.nn.Sequential)
    assert brain.sync_batchnorm_setting() is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("gen_device", ["cpu", "cuda"])
def test_augmentation_on_cuda(gen_device):
    g = torch.Generator(device=gen_device).manual_seed(0)
    heads = [torch.ones(4, 3, 40, 423, device="cuda", dtype=torch.half)] * 2
    out = random_crop(spec_augment(heads, generator=g), 400, generator=g)
    assert out[0].device.type == "cuda" and out[0].dtype == torch.half
    x_mix, y_a, y_b, lam = mixup(
        torch.cat(out, dim=2), torch.arange(4, device="cuda"), generator=g
    )
    assert x_mix.device.type == "cuda" and y_b.device.type == "cuda"
