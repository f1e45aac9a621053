"""Fully convolutional network (FCN) for acoustic scene classification.

The DCASE2020 classifier of the paper, after Hu et al. (2020): a VGG-like
stack of nine convolutions on a ``[batch, 3, bands, frames]`` input (the
three channels are the features, their deltas and delta-deltas), ending in
one feature map per class, a channel attention and global average pooling.

With ``in_channels=3``, ``n_classes=10`` and ``width=1.0`` it has exactly
11,780,329 trainable parameters (the paper's 11.78M):

* input ``BatchNorm2d(3)`` (affine): 6
* nine bias-free convolutions: 11,773,872 (with ``n_classes=10``)
* their ``BatchNorm2d`` (affine), all but the last: 6,336
* ``BatchNorm2d(n_classes, affine=False)`` twice: 0
* channel attention, a shared ``Linear(10, 5) -> ReLU -> Linear(5, 10)``
  with biases: 115

Authors
 * speechbrain-relevance developers
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from speechbrain_relevance.models.layers import FewChannelConv2d

#: Channel widths of the three convolution stages, 3 x [48, 96, 192].
FCN_CHANNELS = (144, 288, 576)


class ChannelAttention(nn.Module):
    """Channel attention with average- and max-pooled branches.

    A CBAM-style gate: the global average and the global maximum of every
    channel go through one shared two-layer MLP, the two outputs are summed
    and a sigmoid turns them into per-channel weights that rescale the
    input.

    Arguments
    ---------
    channels : int
        Number of input channels.
    ratio : int
        Reduction ratio of the MLP's hidden layer
        (``max(1, channels // ratio)`` units).

    Example
    -------
    >>> att = ChannelAttention(10, ratio=2)
    >>> sum(p.numel() for p in att.parameters())
    115
    >>> att(torch.randn(2, 10, 5, 25)).shape
    torch.Size([2, 10, 5, 25])
    """

    def __init__(self, channels, ratio=2):
        super().__init__()
        hidden = max(1, channels // ratio)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels),
        )

    def forward(self, x):
        """Rescale the channels of ``x``.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, height, width]``.

        Returns
        -------
        torch.Tensor
            Same shape as ``x``.
        """
        avg = self.mlp(x.mean(dim=(2, 3)))
        mx = self.mlp(x.amax(dim=(2, 3)))
        gate = torch.sigmoid(avg + mx)
        return x * gate[:, :, None, None]


def _conv_bn_relu(
    in_channels, out_channels, kernel_size, stride=1, conv=nn.Conv2d
):
    """Bias-free convolution with "same"-style padding, BN and ReLU."""
    # No bias: the BatchNorm that follows has its own shift.
    return [
        conv(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class FCN(nn.Module):
    """The paper's FCN classifier for acoustic scene classification.

    Layers (``C1, C2, C3 = 144, 288, 576`` times ``width``)::

        BatchNorm2d(in_channels)
        conv5x5 stride 2 -> C1, conv3x3 C1, maxpool 2
        conv3x3 C2, conv3x3 C2, maxpool 2
        conv3x3 C3 (+ dropout) x 3, conv3x3 C3, maxpool 2
        conv1x1 -> n_classes, BN (no affine), ReLU, BN (no affine)
        channel attention (ratio 2), global average pooling

    Every convolution but the last is bias-free and followed by BN + ReLU.
    Convolutions pad by ``kernel_size // 2`` and max pooling rounds up
    (``ceil_mode=True``) so that any input of at least 8 bands and 8 frames
    is accepted (a floor-mode pool would need 16); on 80 x 400 it makes no
    difference (the maps are 40x200, 20x100, 10x50, 5x25).

    Arguments
    ---------
    n_classes : int
        Number of output classes.
    in_channels : int
        Input channels (3: features, deltas, delta-deltas).
    width : float
        Multiplier of the channel widths (``max(1, round(c * width))``),
        e.g. 0.125 for quick CPU runs; 1.0 is the paper's model.
    dropout : float
        Dropout after the first three ``C3`` convolutions.
    attention_ratio : int
        Reduction ratio of the channel attention.
    channels : sequence of int
        Base widths of the three stages before ``width`` is applied.

    Example
    -------
    >>> model = FCN(n_classes=10, width=0.125)
    >>> model(torch.randn(2, 3, 80, 400)).shape
    torch.Size([2, 10])
    >>> model(torch.randn(1, 3, 80, 423)).shape
    torch.Size([1, 10])
    """

    def __init__(
        self,
        n_classes=10,
        in_channels=3,
        width=1.0,
        dropout=0.3,
        attention_ratio=2,
        channels=FCN_CHANNELS,
    ):
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        if len(channels) != 3:
            raise ValueError(f"channels needs 3 widths, got {channels!r}")
        c1, c2, c3 = (max(1, round(c * width)) for c in channels)
        self.n_classes = n_classes
        self.channels = (c1, c2, c3)

        self.input_norm = nn.BatchNorm2d(in_channels)
        # The first layer sees the (normalised) features: see models.layers.
        layers = _conv_bn_relu(
            in_channels, c1, 5, stride=2, conv=FewChannelConv2d
        )
        layers += _conv_bn_relu(c1, c1, 3)
        layers += [nn.MaxPool2d(2, ceil_mode=True)]
        layers += _conv_bn_relu(c1, c2, 3)
        layers += _conv_bn_relu(c2, c2, 3)
        layers += [nn.MaxPool2d(2, ceil_mode=True)]
        cin = c2
        for _ in range(3):
            layers += _conv_bn_relu(cin, c3, 3)
            layers += [nn.Dropout(dropout)]
            cin = c3
        layers += _conv_bn_relu(c3, c3, 3)
        layers += [nn.MaxPool2d(2, ceil_mode=True)]
        self.features = nn.Sequential(*layers)

        # The class maps are normalised without affine parameters, as in
        # Hu et al.: the second BN re-centres the rectified maps.
        self.classifier = nn.Sequential(
            nn.Conv2d(c3, n_classes, 1, bias=False),
            nn.BatchNorm2d(n_classes, affine=False),
            nn.ReLU(),
            nn.BatchNorm2d(n_classes, affine=False),
        )
        self.attention = ChannelAttention(n_classes, attention_ratio)
        self._init_weights()

    def _init_weights(self):
        # He initialisation suits convolutions followed by ReLU.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x):
        """Classify a batch.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, n_bands, frames]``, at least 8 bands and
            8 frames.

        Returns
        -------
        torch.Tensor
            ``[batch, n_classes]`` logits.
        """
        if x.dim() != 4:
            raise ValueError(
                "FCN expects [batch, channels, bands, frames], got shape "
                f"{tuple(x.shape)}"
            )
        if min(x.shape[2], x.shape[3]) < 8:
            raise ValueError(
                f"FCN needs at least 8 bands and 8 frames, got {x.shape[2]} "
                f"bands x {x.shape[3]} frames"
            )
        h = self.features(self.input_norm(x))
        h = self.attention(self.classifier(h))
        return F.adaptive_avg_pool2d(h, 1).flatten(1)
