"""Multi-head relevance weighting of a time-frequency representation.

The bands of a ``[batch, frames, n_bands]`` representation are split into
heads. Every head is its own small network, shared by all the bands of that
head, which looks at one band's ``2 * context + 1`` frame window around each
frame and outputs a weight in (0, 1) for that time-frequency bin. The
weights multiply the input (plus the input again with ``skip_add``), and
each head's output is min-max scaled to [0, 1] per example.

Authors
 * speechbrain-relevance developers
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from speechbrain.dataio.dataio import length_to_mask

from speechbrain_relevance.errors import ConfigError


def frame_mask(lengths, n_frames, batch, device):
    """Return a ``[batch, frames]`` bool mask of the real (unpadded) frames.

    Arguments
    ---------
    lengths : torch.Tensor or None
        Relative lengths in [0, 1] (SpeechBrain's ``wav_lens``); None means
        every frame is real.
    n_frames : int
        Number of frames of the padded batch.
    batch : int
        Batch size.
    device : torch.device
        Device of the mask.

    Returns
    -------
    torch.Tensor
        ``[batch, frames]`` bool mask.

    Example
    -------
    >>> frame_mask(torch.tensor([1.0, 0.5]), 4, 2, "cpu")
    tensor([[ True,  True,  True,  True],
            [ True,  True, False, False]])
    """
    if lengths is None:
        return torch.ones(batch, n_frames, dtype=torch.bool, device=device)
    # Relative lengths to whole frames, at least one; SpeechBrain's
    # length_to_mask does the rest.
    n_valid = torch.round(lengths.to(device).float() * n_frames).clamp(1)
    return length_to_mask(
        n_valid, max_len=n_frames, dtype=torch.bool, device=device
    )


def minmax_scale(x, mask=None, eps=1e-8):
    """Min-max scale each example of ``[batch, frames, bands]`` to [0, 1].

    Minimum and maximum are taken over the real frames (``mask``) and all
    bands of each example.

    Arguments
    ---------
    x : torch.Tensor
        ``[batch, frames, bands]`` features.
    mask : torch.Tensor, optional
        ``[batch, frames]`` bool mask of real frames.
    eps : float
        Floor of the range (a constant input scales to 0).

    Returns
    -------
    torch.Tensor
        Scaled features, same shape.

    Example
    -------
    >>> y = minmax_scale(torch.tensor([[[1.0, 3.0], [5.0, 9.0]]]))
    >>> y
    tensor([[[0.0000, 0.2500],
             [0.5000, 1.0000]]])
    """
    if mask is None:
        lo = x.amin(dim=(1, 2), keepdim=True)
        hi = x.amax(dim=(1, 2), keepdim=True)
    else:
        m = mask.unsqueeze(-1)
        lo = x.masked_fill(~m, float("inf")).amin(dim=(1, 2), keepdim=True)
        hi = x.masked_fill(~m, float("-inf")).amax(dim=(1, 2), keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(eps)


class RelevanceHead(nn.Module):
    """One relevance sub-network, applied to every band it is given.

    For each band and frame it reads the band's ``2 * context + 1`` frame
    window (zeros beyond the clip) and outputs a weight in (0, 1):

    * ``arch="fc"``: ``Linear(2c+1, hidden) -> sigmoid -> Linear(hidden, 1)
      -> sigmoid`` (1,151 parameters for c = 10, hidden = 50).
    * ``arch="conv"``: ``conv_channels`` kernels of size 3 slide over the
      window (``2c - 1`` positions) -> sigmoid -> ``Linear(conv_channels *
      (2c - 1), 1)`` -> sigmoid.

    Both are evaluated over a whole sequence at once: ``fc`` as two matrix
    products on a strided view of the windows, ``conv`` as 1-D
    convolutions along time; each is exactly the per-window network. The
    weights are stored as ``Conv1d`` layers in both cases.

    Arguments
    ---------
    context : int
        Frames of context ``c`` on each side.
    hidden_size : int
        Hidden units of the ``fc`` architecture.
    arch : str
        ``"fc"`` or ``"conv"``.
    conv_channels : int
        Kernels of the ``conv`` architecture's first layer.

    Example
    -------
    >>> head = RelevanceHead(context=10, hidden_size=50)
    >>> sum(p.numel() for p in head.parameters())
    1151
    >>> head(torch.randn(6, 100)).shape
    torch.Size([6, 100])
    """

    def __init__(self, context=10, hidden_size=50, arch="fc", conv_channels=8):
        super().__init__()
        # ConfigErrors with keys: a recipe's yaml loader names the key the
        # argument was set from.
        if not _is_int(context) or context < 0:
            raise ConfigError(
                "{context} must be an integer >= 0 (frames of context on "
                f"each side of a frame), got {context!r}",
                keys=["context"],
            )
        self.context = context
        self.arch = arch
        window = 2 * context + 1
        if arch == "fc":
            if not _is_int(hidden_size) or hidden_size < 1:
                raise ConfigError(
                    "{hidden_size} must be an integer >= 1, got "
                    f"{hidden_size!r}",
                    keys=["hidden_size"],
                )
            self.layer1 = nn.Conv1d(1, hidden_size, window)
            self.layer2 = nn.Conv1d(hidden_size, 1, 1)
        elif arch == "conv":
            if context < 1:
                raise ValueError(
                    "arch='conv' needs context >= 1 (a size-3 kernel must "
                    f"fit in the 2c+1 window), got context={context}"
                )
            self.layer1 = nn.Conv1d(1, conv_channels, 3)
            self.layer2 = nn.Conv1d(conv_channels, 1, window - 2)
        else:
            raise ValueError(f"arch must be 'fc' or 'conv', got {arch!r}")

    #: Hidden activations per chunk of rows on CPU (``arch="fc"``): 2**18
    #: float32 values, 1 MiB (the chunk sizes compared: README, "Training
    #: throughput").
    chunk_elements = 2**18

    def _fc(self, x):
        # The same network as the two convolutions, on explicit windows: a
        # strided view (no copy) and two matrix products. On CPU this is
        # faster forward and backward than a one-input-channel Conv1d,
        # whose backward is the slow part (README, "Training throughput").
        windows = F.pad(x, (self.context, self.context)).unfold(
            1, 2 * self.context + 1, 1
        )
        h = torch.sigmoid(
            F.linear(windows, self.layer1.weight.squeeze(1), self.layer1.bias)
        )
        w = F.linear(h, self.layer2.weight.flatten(1), self.layer2.bias)
        return torch.sigmoid(w).squeeze(-1)

    def forward(self, x):
        """Weights for ``[rows, frames]`` band sequences.

        Arguments
        ---------
        x : torch.Tensor
            ``[rows, frames]``, one band of one example per row.

        Returns
        -------
        torch.Tensor
            ``[rows, frames]`` weights in (0, 1).
        """
        if self.arch == "fc":
            hidden = self.layer1.weight.shape[0]
            step = max(1, self.chunk_elements // (hidden * x.shape[1]))
            graph = torch.jit.is_tracing() or torch.compiler.is_compiling()
            if x.device.type == "cpu" and step < x.shape[0] and not graph:
                # Rows are independent. In chunks, every intermediate (the
                # hidden activations and, in the backward pass, their
                # gradients) is small enough for the allocator to reuse;
                # whole, each would be a fresh mapping of tens of MB whose
                # page faults cost more than the arithmetic on CPU. A
                # traced or compiled graph would freeze the chunk count: it
                # gets one chunk.
                return torch.cat([self._fc(rows) for rows in x.split(step)])
            return self._fc(x)
        h = F.pad(x.unsqueeze(1), (self.context, self.context))
        h = torch.sigmoid(self.layer1(h))
        return torch.sigmoid(self.layer2(h)).squeeze(1)


class MultiHeadRelevance(nn.Module):
    """Multi-head relevance weighting (the paper's section 3.2).

    Splits the bands into heads, weights every time-frequency bin with the
    head's :class:`RelevanceHead`, applies the skip-add and scales each head
    to [0, 1] per example.

    Arguments
    ---------
    n_bands : int
        Number of input bands (sorted by frequency).
    n_heads : int
        Number of heads; ``n_heads == n_bands`` gives one network per band.
    split : str or sequence of int
        ``"contiguous"`` (head 1 gets the lowest ``n_bands / n_heads`` bands,
        the paper's 40-40), ``"interleaved"`` (band ``b`` goes to head
        ``b % n_heads``, the paper's even-odd) or explicit contiguous band
        counts per head, e.g. ``[20, 60]``.
    context : int
        Frames of context on each side (window ``2c + 1``).
    hidden_size : int
        Hidden units of each head (``arch="fc"``).
    arch : str
        ``"fc"`` or ``"conv"`` (see :class:`RelevanceHead`).
    skip_add : bool
        If True, the output is ``x * w + x``; otherwise ``x * w``.
    scaling : str or None
        ``"minmax"`` scales every head's output to [0, 1] per example (over
        the real frames); None leaves it as is.

    Example
    -------
    >>> rel = MultiHeadRelevance(n_bands=80, n_heads=2)
    >>> x = torch.randn(4, 431, 80)
    >>> y, masks = rel(x, torch.tensor([1.0, 1.0, 0.8, 0.5]),
    ...                return_masks=True)
    >>> y.shape, masks.shape
    (torch.Size([4, 431, 80]), torch.Size([4, 431, 80]))
    >>> [len(b) for b in rel.head_bands()]
    [40, 40]
    """

    def __init__(
        self,
        n_bands=80,
        n_heads=2,
        split="contiguous",
        context=10,
        hidden_size=50,
        arch="fc",
        skip_add=True,
        scaling="minmax",
    ):
        super().__init__()
        bands = _split_bands(n_bands, n_heads, split)
        if scaling not in ("minmax", None):
            raise ValueError(
                f"scaling must be 'minmax' or None, got {scaling!r}"
            )
        self.n_bands = n_bands
        self.n_heads = len(bands)
        self.skip_add = bool(skip_add)
        self.scaling = scaling
        self.heads = nn.ModuleList(
            RelevanceHead(context, hidden_size, arch) for _ in bands
        )
        for i, idx in enumerate(bands):
            self.register_buffer(
                f"_bands_{i}", torch.tensor(idx), persistent=False
            )
        order = torch.tensor([b for idx in bands for b in idx])
        self.register_buffer("_inverse", torch.argsort(order), persistent=False)

    def head_bands(self):
        """Return the band indices of each head.

        Returns
        -------
        list of list of int
            One list of band indices per head.
        """
        return [
            getattr(self, f"_bands_{i}").tolist() for i in range(self.n_heads)
        ]

    def forward(self, x, lengths=None, return_masks=False):
        """Weight and scale ``x``.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, frames, n_bands]`` representation.
        lengths : torch.Tensor, optional
            Relative lengths; padding frames are set to zero before the
            context windows see them and are left out of the min-max
            statistics, so they do not change the real frames' output.
            They are zero in the output.
        return_masks : bool
            Also return the weights.

        Returns
        -------
        torch.Tensor
            ``[batch, frames, n_bands]`` weighted representation.
        torch.Tensor
            ``[batch, frames, n_bands]`` weights in (0, 1), only with
            ``return_masks=True``.
        """
        if x.dim() != 3 or x.shape[-1] != self.n_bands:
            raise ValueError(
                f"MultiHeadRelevance expects [batch, frames, {self.n_bands}]"
                f", got shape {tuple(x.shape)}"
            )
        batch, n_frames, _ = x.shape
        mask = frame_mask(lengths, n_frames, batch, x.device)
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
        outs, weights = [], []
        for i, head in enumerate(self.heads):
            idx = getattr(self, f"_bands_{i}")
            xh = x.index_select(2, idx)
            rows = xh.transpose(1, 2).reshape(-1, n_frames)
            w = head(rows).reshape(batch, -1, n_frames).transpose(1, 2)
            y = xh * w + xh if self.skip_add else xh * w
            if self.scaling == "minmax":
                y = minmax_scale(y, mask)
            outs.append(y)
            weights.append(w)
        out = torch.cat(outs, dim=2).index_select(2, self._inverse)
        out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
        if return_masks:
            masks = torch.cat(weights, dim=2).index_select(2, self._inverse)
            return out, masks
        return out


def _is_int(value):
    """Whether a yaml value is an integer (True and False are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _split_bands(n_bands, n_heads, split):
    """Band indices per head for a ``split`` argument."""
    if not _is_int(n_bands) or n_bands < 1:
        raise ConfigError(
            f"{{n_bands}} must be a positive integer, got {n_bands!r}",
            keys=["n_bands"],
        )
    if isinstance(split, str):
        if not _is_int(n_heads) or not 1 <= n_heads <= n_bands:
            raise ConfigError(
                f"{{n_heads}} must be an integer from 1 to {{n_bands}}="
                f"{n_bands}, got {n_heads!r}",
                keys=["n_heads", "n_bands"],
            )
        if n_bands % n_heads:
            # The allowed head counts and an uneven split for this one,
            # from the real band count.
            divisors = [h for h in range(1, n_bands + 1) if n_bands % h == 0]
            counts = [
                n_bands // n_heads + (h < n_bands % n_heads)
                for h in range(n_heads)
            ]
            raise ConfigError(
                f"{{n_heads}}={n_heads} does not divide {{n_bands}}="
                f"{n_bands} bands into equal heads ({{split}}={split!r}): "
                f"use {{n_heads}} in {', '.join(map(str, divisors))}, or "
                "give band counts per head, e.g. "
                f"{{split}}=[{', '.join(map(str, counts))}]",
                keys=["n_heads", "n_bands", "split"],
            )
        size = n_bands // n_heads
        if split == "contiguous":
            return [
                list(range(h * size, (h + 1) * size)) for h in range(n_heads)
            ]
        if split == "interleaved":
            return [list(range(h, n_bands, n_heads)) for h in range(n_heads)]
        raise ValueError(
            "split must be 'contiguous', 'interleaved' or a list of band "
            f"counts, got {split!r}"
        )
    counts = [int(c) for c in split]
    if n_heads is not None and n_heads != len(counts):
        raise ConfigError(
            f"{{split}}={counts} has {len(counts)} heads but {{n_heads}}="
            f"{n_heads}",
            keys=["split", "n_heads"],
        )
    if any(c < 1 for c in counts) or sum(counts) != n_bands:
        raise ConfigError(
            f"{{split}}={counts} must be positive band counts summing to "
            f"{{n_bands}}={n_bands}",
            keys=["split", "n_bands"],
        )
    starts = [sum(counts[:h]) for h in range(len(counts))]
    return [list(range(s, s + c)) for s, c in zip(starts, counts)]
