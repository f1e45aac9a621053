"""Tests of the multi-head relevance weighting lobe."""

import pytest
import torch

from speechbrain_relevance.lobes import (
    CosGaussFilterbank,
    MultiHeadRelevance,
    RelevanceHead,
    minmax_scale,
)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def windows(x, c):
    """[rows, frames] -> [rows, frames, 2c+1] zero-padded context windows."""
    padded = torch.nn.functional.pad(x, (c, c))
    return padded.unfold(1, 2 * c + 1, 1)


def test_fc_head_parameter_count():
    assert n_params(RelevanceHead(context=10, hidden_size=50)) == 1151
    assert n_params(MultiHeadRelevance(n_heads=2)) == 2 * 1151
    assert n_params(MultiHeadRelevance(n_heads=80)) == 80 * 1151


def test_fc_head_is_the_per_window_mlp():
    torch.manual_seed(0)
    head = RelevanceHead(context=10, hidden_size=50)
    x = torch.randn(3, 40)
    w1 = head.layer1.weight.squeeze(1)  # [50, 21]
    w2 = head.layer2.weight.view(1, 50)
    hidden = torch.sigmoid(windows(x, 10) @ w1.T + head.layer1.bias)
    expected = torch.sigmoid(hidden @ w2.T + head.layer2.bias).squeeze(-1)
    assert torch.allclose(head(x), expected, atol=1e-6)


def test_fc_head_in_chunks_equals_whole(monkeypatch):
    torch.manual_seed(0)
    head = RelevanceHead(context=3, hidden_size=7).double()
    x = torch.randn(11, 40, dtype=torch.float64, requires_grad=True)

    def run():
        w = head(x)
        loss = (w * w.detach()).sum()
        grads = torch.autograd.grad(loss, [x, *head.parameters()])
        return w, grads

    whole_w, whole_g = run()
    # 7 hidden x 40 frames = 280 per row: three rows per chunk, four chunks.
    monkeypatch.setattr(head, "chunk_elements", 3 * 280 + 5)
    calls = []
    whole_fc = head._fc

    def counted_fc(rows):
        calls.append(rows.shape[0])
        return whole_fc(rows)

    monkeypatch.setattr(head, "_fc", counted_fc)
    chunk_w, chunk_g = run()
    assert calls == [3, 3, 3, 2]
    torch.testing.assert_close(chunk_w, whole_w)
    for a, b in zip(chunk_g, whole_g):
        torch.testing.assert_close(a, b)


def test_conv_head_is_the_per_window_network():
    torch.manual_seed(1)
    c = 4
    head = RelevanceHead(context=c, arch="conv")
    assert n_params(head) == 8 * 3 + 8 + 8 * (2 * c - 1) + 1
    x = torch.randn(2, 15)
    win = windows(x, c)  # [2, 15, 9]
    k = head.layer1.weight.squeeze(1)  # [8, 3]
    conv = win.unfold(2, 3, 1) @ k.T + head.layer1.bias  # [2, 15, 7, 8]
    hidden = torch.sigmoid(conv).permute(0, 1, 3, 2).reshape(2, 15, -1)
    w2 = head.layer2.weight.reshape(1, -1)  # [1, 8 * 7]
    expected = torch.sigmoid(hidden @ w2.T + head.layer2.bias).squeeze(-1)
    assert torch.allclose(head(x), expected, atol=1e-6)


def test_masks_in_open_unit_interval_and_shapes():
    rel = MultiHeadRelevance(n_bands=80, n_heads=2)
    y, masks = rel(torch.randn(2, 50, 80) * 5, return_masks=True)
    assert y.shape == masks.shape == (2, 50, 80)
    assert torch.all(masks > 0) and torch.all(masks < 1)


def test_skip_add_and_no_scaling():
    torch.manual_seed(2)
    x = torch.randn(2, 30, 8)
    rel = MultiHeadRelevance(n_bands=8, n_heads=2, context=3, scaling=None)
    y, w = rel(x, return_masks=True)
    assert torch.allclose(y, x * (1 + w), atol=1e-6)
    rel.skip_add = False
    y, w = rel(x, return_masks=True)
    assert torch.allclose(y, x * w, atol=1e-6)


def test_minmax_per_example_and_head():
    rel = MultiHeadRelevance(n_bands=8, n_heads=2, context=2)
    y = rel(torch.randn(3, 20, 8) * 3)
    for h in (slice(0, 4), slice(4, 8)):
        part = y[:, :, h]
        assert torch.allclose(part.amin(dim=(1, 2)), torch.zeros(3), atol=1e-6)
        assert torch.allclose(part.amax(dim=(1, 2)), torch.ones(3), atol=1e-6)


def test_minmax_scale_ignores_padding_frames():
    x = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert torch.allclose(
        minmax_scale(x, mask)[0, :2, 0], torch.tensor([0.0, 1])
    )


@pytest.mark.parametrize("arch", ["fc", "conv"])
def test_padding_frames_do_not_change_real_frames(arch):
    torch.manual_seed(3)
    rel = MultiHeadRelevance(n_bands=8, n_heads=2, context=5, arch=arch)
    real = torch.randn(1, 20, 8)
    alone, masks_alone = rel(real, return_masks=True)
    garbage = torch.randn(1, 20, 8) * 100
    batch = torch.cat(
        [torch.cat([real, garbage], 1), torch.randn(1, 40, 8)], dim=0
    )
    out, masks = rel(batch, torch.tensor([0.5, 1.0]), return_masks=True)
    assert torch.allclose(out[0, :20], alone[0], atol=1e-6)
    assert torch.allclose(masks[0, :20], masks_alone[0], atol=1e-6)
    assert torch.all(out[0, 20:] == 0)


def test_context_window_extent():
    torch.manual_seed(4)
    c = 3
    rel = MultiHeadRelevance(n_bands=4, n_heads=1, context=c, scaling=None)
    x = torch.randn(1, 30, 4)
    _, w = rel(x, return_masks=True)
    j = 10
    x2 = x.clone()
    x2[0, j + c + 1] += 10.0  # outside frame j's window
    _, w2 = rel(x2, return_masks=True)
    assert torch.allclose(w[0, j], w2[0, j])
    x3 = x.clone()
    x3[0, j + c] += 10.0  # inside
    _, w3 = rel(x3, return_masks=True)
    assert not torch.allclose(w[0, j], w3[0, j])
    # No cross-band context: changing band 1 leaves band 0's weights.
    x4 = x.clone()
    x4[0, :, 1] += 10.0
    _, w4 = rel(x4, return_masks=True)
    assert torch.allclose(w[0, :, 0], w4[0, :, 0])


@pytest.mark.parametrize(
    "n_heads,split,expected",
    [
        (1, "contiguous", [list(range(8))]),
        (2, "contiguous", [[0, 1, 2, 3], [4, 5, 6, 7]]),
        (4, "contiguous", [[0, 1], [2, 3], [4, 5], [6, 7]]),
        (2, "interleaved", [[0, 2, 4, 6], [1, 3, 5, 7]]),
        (2, [3, 5], [[0, 1, 2], [3, 4, 5, 6, 7]]),
        (8, "contiguous", [[b] for b in range(8)]),
    ],
)
def test_splits(n_heads, split, expected):
    rel = MultiHeadRelevance(n_bands=8, n_heads=n_heads, split=split)
    assert rel.head_bands() == expected
    assert len(rel.heads) == len(expected)


@pytest.mark.parametrize("split", ["contiguous", "interleaved", [3, 5]])
def test_each_head_owns_its_bands(split):
    torch.manual_seed(5)
    rel = MultiHeadRelevance(
        n_bands=8, n_heads=2, split=split, context=2, scaling=None
    )
    x = torch.randn(2, 12, 8)
    _, before = rel(x, return_masks=True)
    with torch.no_grad():
        rel.heads[1].layer2.bias += 3.0
    _, after = rel(x, return_masks=True)
    changed = (before - after).abs().amax(dim=(0, 1)) > 1e-6
    owned = torch.zeros(8, dtype=torch.bool)
    owned[rel.head_bands()[1]] = True
    assert torch.equal(changed, owned)


@pytest.mark.parametrize("n_heads", [1, 2, 3, 4])
def test_paper_head_counts_run_on_80_bands(n_heads):
    split = "contiguous" if 80 % n_heads == 0 else [27, 27, 26]
    rel = MultiHeadRelevance(n_bands=80, n_heads=n_heads, split=split)
    assert rel(torch.randn(1, 40, 80)).shape == (1, 40, 80)


def test_gradients_reach_filterbank_jointly():
    fbank = CosGaussFilterbank(
        n_filters=8,
        sample_rate=16000,
        win_length=400,
        hop_length=160,
        kernel_size=101,
    )
    rel = MultiHeadRelevance(n_bands=8, n_heads=2, context=2)
    y = rel(fbank(torch.randn(2, 3200)))
    (y * torch.randn_like(y)).sum().backward()
    assert fbank.theta.grad.abs().sum() > 0
    assert all(p.grad is not None for p in rel.parameters())


def test_clear_errors():
    with pytest.raises(ValueError, match="divide"):
        MultiHeadRelevance(n_bands=80, n_heads=3)
    with pytest.raises(ValueError, match="summing to n_bands=80"):
        MultiHeadRelevance(n_bands=80, n_heads=2, split=[30, 30])
    with pytest.raises(ValueError, match="has 3 heads but n_heads=2"):
        MultiHeadRelevance(n_bands=80, n_heads=2, split=[20, 30, 30])
    with pytest.raises(ValueError, match="split must be"):
        MultiHeadRelevance(split="random")
    with pytest.raises(ValueError, match="arch"):
        MultiHeadRelevance(arch="rnn")
    with pytest.raises(ValueError, match="context >= 1"):
        MultiHeadRelevance(arch="conv", context=0)
    with pytest.raises(ValueError, match="scaling"):
        MultiHeadRelevance(scaling="zscore")
    rel = MultiHeadRelevance(n_bands=80)
    with pytest.raises(ValueError, match=r"\[batch, frames, 80\]"):
        rel(torch.randn(1, 10, 40))


def _front_ends():
    from speechbrain.lobes.features import Fbank, Leaf

    from speechbrain_relevance.lobes import (
        CosGaussFilterbank,
        MelFilterbank,
        SincFilterbank,
    )

    framing = dict(sample_rate=16000, win_length=400, hop_length=160)
    return {
        "Fbank": lambda: Fbank(n_mels=20),
        "Leaf": lambda: Leaf(out_channels=20, in_channels=1),
        "MelFilterbank": lambda: MelFilterbank(n_mels=20, **framing),
        "CosGauss": lambda: CosGaussFilterbank(
            n_filters=20, kernel_size=257, **framing
        ),
        "Sinc": lambda: SincFilterbank(
            n_filters=20, kernel_size=257, **framing
        ),
    }


@pytest.mark.parametrize("name", sorted(_front_ends()))
def test_relevance_after_any_front_end(name):
    """One yaml block: RelevanceFrontEnd(<any front-end>, relevance)."""
    from speechbrain_relevance.lobes import RelevanceFrontEnd

    torch.manual_seed(0)
    front = RelevanceFrontEnd(
        _front_ends()[name](), MultiHeadRelevance(n_bands=20, n_heads=2)
    )
    wavs = torch.randn(2, 8000)
    lens = torch.tensor([1.0, 0.6])
    feats, masks = front(wavs, lens, return_masks=True)
    assert feats.shape[0] == 2 and feats.shape[2] == 20
    assert masks.shape == feats.shape
    # Per-head min-max over the real frames: the full clip spans [0, 1].
    first = feats[0].detach()
    assert float(first.min()) == 0.0 and float(first.max()) == 1.0
    feats.sum().backward()
    grads = [p.grad for p in front.relevance.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
