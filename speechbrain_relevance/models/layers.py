"""Layers shared by the classifiers.

A classifier's first convolution sees a feature map with one (or three)
channels. When the front-end is learnable, training needs that layer's
gradient with respect to its input, and on CPU oneDNN computes it several
times slower than the convolution itself (about 7x for the CNN-LSTM's
1 -> 40 channel 5x5 layer): its backward-data kernels are tuned for many
input channels. :class:`FewChannelConv2d` computes that gradient as one
batched matrix product and ``k * k`` strided additions instead, which
costs about what the forward does.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable


def conv2d_input_grad(grad_output, weight, input_shape, stride, padding):
    """Gradient of a 2-D convolution with respect to its input.

    The transposed convolution of ``grad_output`` with ``weight``, computed
    as one batched matrix product (every kernel tap's contribution at every
    output position) followed by one strided addition per kernel tap.

    Arguments
    ---------
    grad_output : torch.Tensor
        ``[batch, out_channels, out_height, out_width]``.
    weight : torch.Tensor
        ``[out_channels, in_channels, kernel_height, kernel_width]``.
    input_shape : sequence of int
        ``(batch, in_channels, height, width)`` of the convolution's input.
    stride : tuple of int
        ``(stride_height, stride_width)``.
    padding : tuple of int
        ``(padding_height, padding_width)`` (zeros).

    Returns
    -------
    torch.Tensor
        ``input_shape``, in ``grad_output``'s dtype.

    Example
    -------
    >>> x = torch.randn(2, 1, 20, 16, requires_grad=True)
    >>> w = torch.randn(8, 1, 5, 5)
    >>> y = F.conv2d(x, w, padding=2, stride=2)
    >>> g = torch.randn_like(y)
    >>> expected, = torch.autograd.grad(y, x, g)
    >>> got = conv2d_input_grad(g, w, x.shape, (2, 2), (2, 2))
    >>> torch.allclose(got, expected, atol=1e-5)
    True
    """
    batch, in_channels, height, width = input_shape
    out_channels, _, k_h, k_w = weight.shape
    out_h, out_w = grad_output.shape[-2:]
    s_h, s_w = stride
    p_h, p_w = padding
    # bmm on an expanded view: torch.matmul would fold the batch into one
    # matrix product through two transposed copies of the operands.
    weight_t = weight.reshape(out_channels, -1).t().to(grad_output.dtype)
    taps = torch.bmm(
        weight_t.expand(batch, -1, -1),
        grad_output.reshape(batch, out_channels, out_h * out_w),
    ).view(batch, in_channels, k_h, k_w, out_h, out_w)
    # The padded input; with a stride, rows or columns past the last
    # window get no gradient, hence the max.
    span_h = (out_h - 1) * s_h + 1
    span_w = (out_w - 1) * s_w + 1
    padded = grad_output.new_zeros(
        batch,
        in_channels,
        max(height + 2 * p_h, span_h + k_h - 1),
        max(width + 2 * p_w, span_w + k_w - 1),
    )
    for i in range(k_h):
        for j in range(k_w):
            padded[:, :, i : i + span_h : s_h, j : j + span_w : s_w] += taps[
                :, :, i, j
            ]
    return padded[:, :, p_h : p_h + height, p_w : p_w + width]


class _Conv2dMatmulInputGrad(torch.autograd.Function):
    """``F.conv2d`` whose backward uses :func:`conv2d_input_grad`."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride = stride
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    @once_differentiable
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_x:
            grad_x = conv2d_input_grad(
                grad_output, weight, x.shape, ctx.stride, ctx.padding
            ).to(x.dtype)
        if need_w or (need_b and ctx.has_bias):
            # Under autocast the forward ran in grad_output's dtype.
            dtype = grad_output.dtype
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad_output,
                x.to(dtype),
                weight.to(dtype),
                [weight.shape[0]] if ctx.has_bias else None,
                list(ctx.stride),
                list(ctx.padding),
                [1, 1],
                False,
                [0, 0],
                1,
                [False, need_w, need_b and ctx.has_bias],
            )
            if grad_w is not None:
                grad_w = grad_w.to(weight.dtype)
            if grad_b is not None:
                grad_b = grad_b.to(weight.dtype)
        return grad_x, grad_w, grad_b, None, None


class FewChannelConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a fast CPU input gradient, for few input channels.

    Same arguments, parameters and state dict as ``nn.Conv2d``, and the
    same outputs. When the input requires a gradient (a learnable
    front-end feeds it) and lives on the CPU, the gradient with respect to
    the input is computed by :func:`conv2d_input_grad`; everywhere else
    (GPU, inference, fixed features, dilation, groups, non-zero padding
    modes) it is ``nn.Conv2d``. Meant for a classifier's first layer: the
    matrix product holds ``in_channels * kernel_size**2`` values per output
    position, small for one to three input channels.

    Example
    -------
    >>> conv = FewChannelConv2d(1, 8, 5, padding=2)
    >>> x = torch.randn(2, 1, 30, 20, requires_grad=True)
    >>> conv(x).shape
    torch.Size([2, 8, 30, 20])
    >>> sorted(conv.state_dict())
    ['bias', 'weight']
    """

    def _matmul_input_grad(self, x):
        return (
            x.requires_grad
            and torch.is_grad_enabled()
            and x.device.type == "cpu"
            and x.dim() == 4
            and self.groups == 1
            and self.dilation == (1, 1)
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
        )

    def forward(self, x):
        """Convolve ``x`` (``[batch, in_channels, height, width]``)."""
        if self._matmul_input_grad(x):
            return _Conv2dMatmulInputGrad.apply(
                x, self.weight, self.bias, self.stride, self.padding
            )
        return super().forward(x)
