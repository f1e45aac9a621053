"""A small 2-D CNN for short clips (the FSDD recipe's classifier).

Keyword-sized problems (a spoken digit, about half a second) do not need
the FCN's 11.8M parameters: three convolution blocks and a masked time
average give a model that trains a whole leave-one-speaker-out
cross-validation in minutes on one CPU core, so that front-ends can be
compared over several seeds. Every front-end gets the same classifier.

Authors
 * speechbrain-relevance developers
"""

import torch.nn as nn

from speechbrain_relevance.lobes.relevance import frame_mask
from speechbrain_relevance.models.layers import FewChannelConv2d


class CompactCNN(nn.Module):
    """Conv blocks, masked time pooling and a linear output layer.

    ``[batch, frames, n_bands]`` -> ``[batch, 1, frames, n_bands]`` -> for
    each width in ``channels``: conv 3x3 (padded) -> BatchNorm -> ReLU ->
    max-pool 2x2 (all blocks but the last) -> max over the remaining
    frequency axis -> mean over the real time steps -> dropout -> linear.

    The padding is zeroed before every convolution and left out of the
    time average, so in eval mode the logits of a clip do not depend on
    how much padding its batch adds (beyond rounding its length up to a
    multiple of the pooling stride).

    Arguments
    ---------
    n_bands : int
        Input bands (features per frame).
    n_classes : int
        Output classes.
    channels : sequence of int
        Width of each convolution block.
    dropout : float
        Dropout before the output layer.

    Example
    -------
    >>> import torch
    >>> model = CompactCNN(n_bands=40, n_classes=10)
    >>> x = torch.randn(4, 101, 40)
    >>> model(x, torch.tensor([1.0, 0.5, 0.3, 1.0])).shape
    torch.Size([4, 10])
    >>> sum(p.numel() for p in model.parameters())
    24058
    """

    def __init__(self, n_bands=40, n_classes=10, channels=(16, 32, 64),
                 dropout=0.2):
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1:
            raise ValueError(
                f"channels must be positive widths, got {channels}"
            )
        n_pools = len(channels) - 1
        if n_bands < 2**n_pools:
            raise ValueError(
                f"n_bands={n_bands} is too small for {n_pools} 2x2 "
                "poolings"
            )
        blocks = []
        in_ch = 1
        for i, out_ch in enumerate(channels):
            # The first layer sees the features (see models.layers).
            conv = FewChannelConv2d if i == 0 else nn.Conv2d
            layers = [
                conv(in_ch, out_ch, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(),
            ]
            if i < n_pools:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            blocks.append(nn.Sequential(*layers))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(in_ch, n_classes)
        )

    def forward(self, x, lengths=None):
        """Classify a batch of feature sequences.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, frames, n_bands]`` features.
        lengths : torch.Tensor, optional
            Relative lengths in [0, 1]; None means every frame is real.

        Returns
        -------
        torch.Tensor
            ``[batch, n_classes]`` logits.
        """
        if x.dim() != 3:
            raise ValueError(
                "CompactCNN expects [batch, frames, n_bands], got shape "
                f"{tuple(x.shape)}"
            )
        batch, n_frames, _ = x.shape
        mask = frame_mask(lengths, n_frames, batch, x.device)
        h = x.masked_fill(~mask.unsqueeze(-1), 0.0).unsqueeze(1)
        for block in self.blocks:
            h = block(h)
            # Zero the padding again at this block's time resolution (a
            # pooled step is real if the first frame it covers is), so that
            # the next convolution sees zeros there, as at a clip's end.
            if mask.shape[1] != h.shape[2]:
                mask = mask[:, ::2]  # ceil(n / 2) steps, like the pooling
            h = h * mask[:, None, :, None].to(h.dtype)
        h = h.amax(dim=3)  # [batch, channels, frames']
        keep = mask.unsqueeze(1).to(h.dtype)
        pooled = h.sum(dim=2) / keep.sum(dim=2).clamp_min(1.0)
        return self.head(pooled)
