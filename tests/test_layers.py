"""FewChannelConv2d: the same convolution as nn.Conv2d, gradients included."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_relevance.models import CNNLSTM, FCN, CompactCNN
from speechbrain_relevance.models.layers import (
    FewChannelConv2d,
    conv2d_input_grad,
)

FAST_BACKWARD = "_Conv2dMatmulInputGradBackward"


def _pair(in_ch, out_ch, kernel, stride, padding, bias, seed=0):
    torch.manual_seed(seed)
    ref = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=bias)
    fast = FewChannelConv2d(in_ch, out_ch, kernel, stride, padding, bias=bias)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


def _grads(conv, x, g):
    x = x.clone().requires_grad_()
    y = conv(x)
    params = [p for p in conv.parameters()]
    grads = torch.autograd.grad(y, [x] + params, g)
    return y, grads


@pytest.mark.parametrize(
    "in_ch,out_ch,kernel,stride,padding,bias,shape",
    [
        (1, 40, 5, 1, 2, True, (3, 37, 21)),  # CNN-LSTM's first layer
        (1, 16, 3, 1, 1, False, (4, 30, 40)),  # compact CNN's
        (3, 12, 5, 2, 2, False, (2, 40, 51)),  # FCN's, odd width
        (3, 12, 5, 2, 2, False, (2, 41, 50)),  # stride leaves a row out
        (2, 6, (3, 5), (2, 1), (0, 1), True, (2, 17, 19)),
        (1, 4, 4, 3, 0, True, (2, 20, 23)),  # even kernel, no padding
    ],
)
def test_outputs_and_all_gradients_match_conv2d(
    in_ch, out_ch, kernel, stride, padding, bias, shape
):
    ref, fast = _pair(in_ch, out_ch, kernel, stride, padding, bias)
    x = torch.randn(shape[0], in_ch, *shape[1:], dtype=torch.float64)
    ref.double()
    fast.double()
    with torch.no_grad():
        g = torch.randn_like(ref(x))
    y_ref, g_ref = _grads(ref, x, g)
    y_fast, g_fast = _grads(fast, x, g)
    assert y_fast.grad_fn.name() == FAST_BACKWARD
    torch.testing.assert_close(y_fast, y_ref)
    assert len(g_fast) == len(g_ref)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b)


def test_input_grad_function_matches_autograd():
    x = torch.randn(2, 3, 19, 24, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, 3, 5, dtype=torch.float64)
    y = F.conv2d(x, w, stride=(2, 3), padding=(1, 2))
    g = torch.randn_like(y)
    (expected,) = torch.autograd.grad(y, x, g)
    got = conv2d_input_grad(g, w, x.shape, (2, 3), (1, 2))
    torch.testing.assert_close(got, expected)


def test_gradcheck():
    conv = FewChannelConv2d(1, 3, 3, stride=2, padding=1).double()
    x = torch.randn(2, 1, 7, 6, dtype=torch.float64, requires_grad=True)
    assert conv(x).grad_fn.name() == FAST_BACKWARD

    def run(x, weight, bias):
        params = {"weight": weight, "bias": bias}
        return torch.func.functional_call(conv, params, (x,))

    weight = conv.weight.detach().clone().requires_grad_()
    bias = conv.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(run, (x, weight, bias))


def test_plain_conv2d_where_no_input_gradient_is_needed():
    conv = FewChannelConv2d(1, 4, 3, padding=1)
    x = torch.randn(2, 1, 10, 8)
    # Fixed features (mel baseline): nn.Conv2d's own backward.
    assert "Convolution" in conv(x).grad_fn.name()
    with torch.no_grad():
        assert conv(x.requires_grad_()).grad_fn is None
    # Features it cannot handle go to nn.Conv2d too.
    dilated = FewChannelConv2d(1, 4, 3, padding=2, dilation=2)
    assert "Convolution" in dilated(x).grad_fn.name()
    same = FewChannelConv2d(1, 4, 3, padding="same")
    assert "Convolution" in same(x).grad_fn.name()


def test_bf16_autocast_matches_conv2d():
    ref, fast = _pair(1, 8, 5, 1, 2, True)
    x = torch.randn(2, 1, 30, 20)
    g = torch.randn(2, 8, 30, 20)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_ref, g_ref = _grads(ref, x, g)
        y_fast, g_fast = _grads(fast, x, g)
    assert y_fast.dtype == y_ref.dtype == torch.bfloat16
    torch.testing.assert_close(y_fast, y_ref)
    for a, b, p in zip(g_fast, g_ref, [x] + list(ref.parameters())):
        assert a.dtype == b.dtype == p.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-2 * b.abs().max())


@pytest.mark.parametrize(
    "model,shape",
    [
        (CNNLSTM(n_bands=12, conv_channels=4, freq_pool=3, lstm_size=8,
                 fc_size=8), (3, 25, 12)),
        (CompactCNN(n_bands=8, channels=(4, 6)), (3, 25, 8)),
        (FCN(n_classes=4, width=0.05), (3, 3, 16, 24)),
    ],
    ids=["cnn_lstm", "compact_cnn", "fcn"],
)
def test_classifiers_use_it_for_their_first_layer_only(model, shape):
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert isinstance(first, FewChannelConv2d)
    assert sum(isinstance(m, FewChannelConv2d) for m in model.modules()) == 1
    model.eval()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    model.double()
    out = model(x)
    (gx,) = torch.autograd.grad(out.sum(), x)
    # Reference: the same weights through nn.Conv2d's own backward.
    swapped = nn.Conv2d(
        first.in_channels, first.out_channels, first.kernel_size,
        first.stride, first.padding, bias=first.bias is not None,
    ).double()
    swapped.load_state_dict(first.state_dict())
    first.forward = swapped.forward
    out_ref = model(x)
    (gx_ref,) = torch.autograd.grad(out_ref.sum(), x)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(gx, gx_ref)
