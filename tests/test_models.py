"""Tests of the FCN and CNN-LSTM classifiers."""

import pytest
import torch

from speechbrain_relevance.models import (
    CNNLSTM,
    FCN,
    ChannelAttention,
    aggregate_patch_posteriors,
    split_into_patches,
)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_fcn_exact_parameter_count():
    model = FCN(n_classes=10, in_channels=3)
    assert n_params(model) == 11_780_329
    assert model.channels == (144, 288, 576)


def test_fcn_parameter_breakdown():
    # Input BN (6) + channel attention with biases (115) on top of the
    # convolutions and their BatchNorms: the two details that pin the count.
    model = FCN()
    assert n_params(model.input_norm) == 6
    assert n_params(model.attention) == 10 * 5 + 5 + 5 * 10 + 10
    assert n_params(model.classifier) == 576 * 10
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 9  # the paper's 9 layers: eight + the 1x1
    assert all(c.bias is None for c in convs)
    affine_free = [
        m
        for m in model.classifier
        if isinstance(m, torch.nn.BatchNorm2d) and not m.affine
    ]
    assert len(affine_free) == 2


def test_channel_attention_rescales_channels():
    att = ChannelAttention(6, ratio=2)
    x = torch.rand(2, 6, 3, 4) + 0.1
    y = att(x)
    gate = y / x
    # One gate in (0, 1) per example and channel.
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate))
    assert ((gate > 0) & (gate < 1)).all()


@pytest.mark.parametrize("frames", [400, 423, 8])
def test_fcn_output_shapes(frames):
    torch.manual_seed(0)
    model = FCN(n_classes=10, width=0.125).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 80, frames))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_fcn_train_step_and_backward():
    model = FCN(n_classes=5, width=0.0625).train()
    out = model(torch.randn(3, 3, 80, 64))
    out.logsumexp(-1).sum().backward()
    assert out.shape == (3, 5)
    assert all(p.grad is not None for p in model.parameters())


def test_fcn_width_multiplier():
    small = FCN(width=0.25)
    assert small.channels == (36, 72, 144)
    assert n_params(small) < n_params(FCN()) / 10
    assert FCN(width=0.001).channels == (1, 1, 1)
    with pytest.raises(ValueError):
        FCN(width=0)


def test_fcn_rejects_too_small_inputs():
    model = FCN(width=0.0625)
    with pytest.raises(ValueError):
        model(torch.randn(1, 3, 80, 7))
    with pytest.raises(ValueError):
        model(torch.randn(3, 80, 400))


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_cnn_lstm_shapes(pooling):
    model = CNNLSTM(n_bands=80, n_classes=10, pooling=pooling)
    out = model(torch.randn(4, 51, 80), torch.tensor([1.0, 0.9, 0.5, 0.1]))
    assert out.shape == (4, 10)
    lstm = model.lstm
    assert lstm.num_layers == 2 and lstm.hidden_size == 256
    assert lstm.dropout == 0.25
    assert lstm.input_size == 40 * (80 // 3)
    assert model.head[0].out_features == 256


def test_cnn_lstm_without_fc_layer():
    model = CNNLSTM(n_bands=40, n_classes=3, fc_size=None)
    assert isinstance(model.head[-1], torch.nn.Linear)
    assert model.head[-1].in_features == 256
    assert model(torch.randn(2, 20, 40)).shape == (2, 3)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_cnn_lstm_padding_invariance(pooling):
    torch.manual_seed(0)
    model = CNNLSTM(n_bands=30, n_classes=4, pooling=pooling).eval()
    short = torch.randn(1, 17, 30)
    other = torch.randn(1, 40, 30)
    # Garbage (not zeros) in the padding: the lengths must neutralise it.
    padded = torch.cat([short, torch.randn(1, 23, 30) * 5], dim=1)
    batch = torch.cat([padded, other])
    with torch.no_grad():
        alone = model(short)
        batched = model(batch, torch.tensor([17 / 40, 1.0]))
        other_alone = model(other)
    torch.testing.assert_close(batched[0:1], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[1:2], other_alone, atol=1e-5, rtol=1e-5)


def test_cnn_lstm_padding_matters_without_lengths():
    torch.manual_seed(0)
    model = CNNLSTM(n_bands=30, n_classes=4).eval()
    short = torch.randn(1, 17, 30)
    padded = torch.cat([short, torch.randn(1, 23, 30)], dim=1)
    with torch.no_grad():
        assert not torch.allclose(model(short), model(padded))


def _packed_reference(model, x, lengths):
    """The former forward: the LSTM on packed sequences."""
    batch, n_frames, _ = x.shape
    n_valid = torch.round(lengths * n_frames).clamp(1).long()
    mask = torch.arange(n_frames) < n_valid.unsqueeze(1)
    x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
    h = model.conv(x.unsqueeze(1)).permute(0, 2, 1, 3).flatten(2)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        h, n_valid, batch_first=True, enforce_sorted=False
    )
    out, (h_n, _) = model.lstm(packed)
    if model.pooling == "last":
        summary = h_n[-1]
    else:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=n_frames
        )
        m = mask.unsqueeze(-1).to(out.dtype)
        summary = (out * m).sum(dim=1) / n_valid.unsqueeze(1).to(out.dtype)
    return model.head(summary)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_cnn_lstm_matches_packed_lstm(pooling):
    torch.manual_seed(0)
    model = CNNLSTM(n_bands=30, n_classes=4, pooling=pooling).eval()
    x = torch.randn(3, 40, 30)
    lengths = torch.tensor([1.0, 0.6, 0.3])
    with torch.no_grad():
        out = model(x, lengths)
        ref = _packed_reference(model, x, lengths)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_cnn_lstm_batch_matches_examples_alone(pooling):
    torch.manual_seed(0)
    model = CNNLSTM(n_bands=30, n_classes=4, pooling=pooling).eval()
    n_real = [40, 24, 12, 1]
    x = torch.randn(len(n_real), 40, 30) * 3  # garbage in the padding
    lengths = torch.tensor(n_real) / 40
    with torch.no_grad():
        batched = model(x, lengths)
        for i, n in enumerate(n_real):
            alone = model(x[i : i + 1, :n])
            torch.testing.assert_close(
                batched[i : i + 1], alone, atol=1e-5, rtol=1e-5
            )


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_cnn_lstm_gradients_reach_lstm(pooling):
    torch.manual_seed(0)
    model = CNNLSTM(n_bands=30, n_classes=4, pooling=pooling).train()
    out = model(torch.randn(3, 20, 30), torch.tensor([1.0, 0.5, 0.2]))
    out.logsumexp(-1).sum().backward()
    for name, p in model.lstm.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_split_into_patches():
    x = torch.arange(120.0).reshape(120, 1).expand(120, 2)
    patches = split_into_patches(x, 51)
    assert patches.shape == (3, 51, 2)
    assert patches[1, 0, 0] == 51
    assert (patches[2, 18:] == 0).all()  # 102..119 then zero padding
    assert split_into_patches(x, 51, pad_last=False).shape == (2, 51, 2)
    assert split_into_patches(x[:10], 51).shape == (1, 51, 2)
    hop = split_into_patches(x, 51, hop=25, pad_last=False)
    assert hop.shape == (3, 51, 2) and hop[2, 0, 0] == 50


def test_aggregate_patch_posteriors():
    logits = torch.tensor(
        [
            [4.0, 0.0],  # clip a, confident class 0
            [0.0, 0.5],  # clip a, mild class 1
            [0.0, 0.5],  # clip a, mild class 1
            [0.0, 2.0],  # clip b
        ]
    )
    ids = ["a", "a", "a", "b"]
    lp = torch.log_softmax(logits, -1)

    clips, mean_log = aggregate_patch_posteriors(logits, ids, "mean_log_prob")
    assert clips == ["a", "b"]
    expected = torch.log_softmax(lp[:3].mean(0), -1)
    torch.testing.assert_close(mean_log[0], expected)
    torch.testing.assert_close(mean_log.exp().sum(-1), torch.ones(2))

    clips, mean_prob = aggregate_patch_posteriors(logits, ids, "mean_prob")
    torch.testing.assert_close(mean_prob[0].exp(), lp[:3].exp().mean(0))
    torch.testing.assert_close(mean_prob[1], lp[3])
    assert mean_prob.argmax(-1).tolist() == [0, 1]

    with pytest.raises(ValueError):
        aggregate_patch_posteriors(logits, ids[:3])
    with pytest.raises(ValueError):
        aggregate_patch_posteriors(logits, ids, "vote")


def test_aggregate_patch_posteriors_tensor_ids_keep_order():
    logits = torch.randn(5, 3)
    clips, scores = aggregate_patch_posteriors(
        logits, torch.tensor([7, 3, 7, 3, 9])
    )
    assert clips == [7, 3, 9]
    assert scores.shape == (3, 3)


def test_compact_cnn_padding_does_not_change_eval_logits():
    from speechbrain_relevance.models import CompactCNN

    torch.manual_seed(0)
    model = CompactCNN(n_bands=40, n_classes=10).eval()
    clips = [torch.randn(n, 40) for n in (64, 37, 9)]
    batch = torch.zeros(3, 64, 40)
    for i, c in enumerate(clips):
        batch[i, : c.shape[0]] = c
        batch[i, c.shape[0]:] = 5.0  # junk in the padding
    lens = torch.tensor([c.shape[0] / 64 for c in clips])
    together = model(batch, lens)
    # Alone, each clip padded to a multiple of the pooling stride (8) so
    # that the pooled steps line up with the batched ones.
    for i, c in enumerate(clips):
        n = -(-c.shape[0] // 8) * 8
        x = torch.zeros(1, n, 40)
        x[0, : c.shape[0]] = c
        alone = model(x, torch.tensor([c.shape[0] / n]))
        assert torch.allclose(together[i], alone[0], atol=1e-5)


def test_compact_cnn_gradients_and_bad_input():
    from speechbrain_relevance.models import CompactCNN

    model = CompactCNN(n_bands=40, n_classes=10, channels=(4, 8))
    x = torch.randn(2, 30, 40, requires_grad=True)
    model(x).sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="batch, frames, n_bands"):
        model(torch.randn(30, 40))
    with pytest.raises(ValueError, match="too small"):
        CompactCNN(n_bands=4, channels=(4, 8, 16, 32))
