"""CNN-LSTM classifier for urban sound classification (UrbanSound8k).

The paper's backend for UrbanSound8k: one convolutional layer (40 filters
of 5 x 5), a 2-layer LSTM with 256 cells and a fully connected layer of
size 256, followed here by the output layer. The model reads a
``[batch, frames, n_bands]`` representation (SpeechBrain's layout) with
optional relative lengths, and the padding of a batch does not change the
outputs of its shorter examples (in eval mode, see :class:`CNNLSTM`).

The authors' scripts train and test on 51-frame patches;
:func:`split_into_patches` and :func:`aggregate_patch_posteriors` turn such
patch-level outputs into clip-level decisions.

Authors
 * speechbrain-relevance developers
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from speechbrain_relevance.lobes.relevance import frame_mask
from speechbrain_relevance.models.layers import FewChannelConv2d


class CNNLSTM(nn.Module):
    """Convolution + 2-layer LSTM + fully connected classifier.

    ``[batch, frames, n_bands]`` -> conv 5x5 (1 -> 40 channels, padded to
    keep the size) -> BN -> ReLU -> max-pool (1, 3) along frequency ->
    per-frame features of size ``40 * (n_bands // 3)`` -> LSTM (2 layers,
    256 units, dropout 0.25 between them) -> pooling over time -> FC 256 +
    ReLU -> Linear to the classes.

    With ``lengths``, the input's padding frames are zeroed (so the
    convolution sees what it would see at the clip's real end) and the time
    pooling only uses real frames. The LSTM needs no packing: it is
    unidirectional and the padding is at the end, so its outputs at real
    frames never see the padding (the padded LSTM gives the packed results
    at those frames, and is faster on CPU).
    Outputs therefore do not depend on the padding, except through the
    BatchNorm batch statistics in training mode (they include the padded
    positions, as everywhere in SpeechBrain); in eval mode they are exact.

    Arguments
    ---------
    n_bands : int
        Number of input bands.
    n_classes : int
        Number of output classes.
    conv_channels : int
        Filters of the convolution.
    kernel_size : int
        Convolution kernel size (square, odd).
    freq_pool : int
        Max-pooling size along frequency.
    lstm_size : int
        LSTM units per layer.
    lstm_layers : int
        Number of LSTM layers.
    lstm_dropout : float
        Dropout between LSTM layers.
    fc_size : int or None
        Size of the fully connected layer before the output layer; None or
        0 connects the LSTM output to the classes directly (the authors'
        scripts).
    dropout : float
        Dropout before the output layer.
    pooling : str
        ``"last"``: the top LSTM layer's state at each example's last real
        frame (the authors' choice); ``"mean"``: the mean over real frames.

    Example
    -------
    >>> model = CNNLSTM(n_bands=80, n_classes=10)
    >>> x = torch.randn(3, 51, 80)
    >>> model(x).shape
    torch.Size([3, 10])
    >>> model(x, torch.tensor([1.0, 0.8, 0.5])).shape
    torch.Size([3, 10])
    """

    def __init__(
        self,
        n_bands=80,
        n_classes=10,
        conv_channels=40,
        kernel_size=5,
        freq_pool=3,
        lstm_size=256,
        lstm_layers=2,
        lstm_dropout=0.25,
        fc_size=256,
        dropout=0.0,
        pooling="last",
    ):
        super().__init__()
        if pooling not in ("last", "mean"):
            raise ValueError(
                f"pooling must be 'last' or 'mean', got {pooling!r}"
            )
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if n_bands < freq_pool:
            raise ValueError(
                f"n_bands={n_bands} is smaller than freq_pool={freq_pool}"
            )
        self.pooling = pooling
        self.conv = nn.Sequential(
            FewChannelConv2d(
                1, conv_channels, kernel_size, padding=kernel_size // 2
            ),
            nn.BatchNorm2d(conv_channels),
            nn.ReLU(),
            nn.MaxPool2d((1, freq_pool)),
        )
        n_features = conv_channels * (n_bands // freq_pool)
        self.lstm = nn.LSTM(
            n_features,
            lstm_size,
            num_layers=lstm_layers,
            dropout=lstm_dropout if lstm_layers > 1 else 0.0,
            batch_first=True,
        )
        head = []
        size = lstm_size
        if fc_size:
            head += [nn.Linear(lstm_size, fc_size), nn.ReLU()]
            size = fc_size
        head += [nn.Dropout(dropout), nn.Linear(size, n_classes)]
        self.head = nn.Sequential(*head)

    def forward(self, x, lengths=None):
        """Classify a batch of sequences.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, frames, n_bands]`` features.
        lengths : torch.Tensor, optional
            Relative lengths in [0, 1]; None means all frames are real.

        Returns
        -------
        torch.Tensor
            ``[batch, n_classes]`` logits.
        """
        if x.dim() != 3:
            raise ValueError(
                "CNNLSTM expects [batch, frames, n_bands], got shape "
                f"{tuple(x.shape)}"
            )
        batch, n_frames, _ = x.shape
        mask = frame_mask(lengths, n_frames, batch, x.device)
        # Zero the padding so that the convolution at the last real frames
        # sees the same zeros as its own edge padding would give.
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
        h = self.conv(x.unsqueeze(1))  # [batch, channels, frames, bands']
        h = h.permute(0, 2, 1, 3).flatten(2)  # [batch, frames, features]

        # Unidirectional LSTM with the padding at the end: its outputs at
        # real frames never see the padding, so no packing is needed.
        out, _ = self.lstm(h)  # [batch, frames, lstm_size]
        n_valid = mask.sum(dim=1)  # in [1, frames]
        if self.pooling == "last":
            # Top layer's output at each example's last real frame.
            index = (n_valid - 1).view(-1, 1, 1).expand(-1, 1, out.shape[2])
            summary = out.gather(1, index).squeeze(1)
        else:
            m = mask.unsqueeze(-1).to(out.dtype)
            summary = (out * m).sum(dim=1) / n_valid.unsqueeze(1).to(out.dtype)
        return self.head(summary)


def split_into_patches(x, patch_frames=51, hop=None, pad_last=True):
    """Cut one clip's ``[frames, n_bands]`` features into patches.

    Arguments
    ---------
    x : torch.Tensor
        ``[frames, n_bands]`` features of one clip.
    patch_frames : int
        Frames per patch (51 in the authors' scripts).
    hop : int, optional
        Frames between patch starts; defaults to ``patch_frames`` (no
        overlap).
    pad_last : bool
        If True, a clip shorter than one patch, or a remainder at the end,
        gives one more patch, zero-padded to ``patch_frames``; if False,
        the remainder is dropped (a clip shorter than a patch still gives
        one padded patch so that every clip is scored).

    Returns
    -------
    torch.Tensor
        ``[n_patches, patch_frames, n_bands]``.

    Example
    -------
    >>> split_into_patches(torch.randn(400, 80), 51).shape
    torch.Size([8, 51, 80])
    >>> split_into_patches(torch.randn(400, 80), 51, pad_last=False).shape
    torch.Size([7, 51, 80])
    """
    hop = patch_frames if hop is None else hop
    if patch_frames < 1 or hop < 1:
        raise ValueError("patch_frames and hop must be >= 1")
    n_frames = x.shape[0]
    if n_frames <= patch_frames:
        n_patches = 1
    else:
        full = (n_frames - patch_frames) // hop + 1
        covered = (full - 1) * hop + patch_frames
        n_patches = full + int(pad_last and covered < n_frames)
    needed = (n_patches - 1) * hop + patch_frames
    if needed > n_frames:
        x = F.pad(x, (0, 0, 0, needed - n_frames))
    return x.unfold(0, patch_frames, hop).transpose(1, 2)[:n_patches]


def aggregate_patch_posteriors(logits, clip_ids, method="mean_log_prob"):
    """Combine patch-level outputs into one score vector per clip.

    Arguments
    ---------
    logits : torch.Tensor
        ``[n_patches, n_classes]`` logits (log-probabilities work too).
    clip_ids : sequence or torch.Tensor
        The clip of each patch (any hashable ids).
    method : str
        ``"mean_log_prob"``: average the patches' log-posteriors (a product
        of posteriors, i.e. patches treated as independent evidence; one
        confident patch cannot outvote many others). ``"mean_prob"``:
        average the posteriors (more robust to a few confidently wrong
        patches). Both return log-scores; for ``"mean_prob"`` they are
        the log of the averaged posteriors, so they are normalised, for
        ``"mean_log_prob"`` they are re-normalised with a log-softmax.

    Returns
    -------
    list
        Clip ids, in order of first appearance.
    torch.Tensor
        ``[n_clips, n_classes]`` clip log-posteriors; ``argmax(-1)`` gives
        the clip decisions.

    Example
    -------
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    >>> ids, scores = aggregate_patch_posteriors(logits, ["a", "a", "b"])
    >>> ids, scores.argmax(-1).tolist()
    (['a', 'b'], [0, 1])
    """
    if method not in ("mean_log_prob", "mean_prob"):
        raise ValueError(
            f"method must be 'mean_log_prob' or 'mean_prob', got {method!r}"
        )
    if torch.is_tensor(clip_ids):
        clip_ids = clip_ids.tolist()
    if len(clip_ids) != logits.shape[0]:
        raise ValueError(
            f"{len(clip_ids)} clip ids for {logits.shape[0]} patches"
        )
    order = {}
    index = [order.setdefault(c, len(order)) for c in clip_ids]
    index = torch.tensor(index, device=logits.device)
    n_clips = len(order)

    log_probs = F.log_softmax(logits.float(), dim=-1)
    values = log_probs if method == "mean_log_prob" else log_probs.exp()
    sums = torch.zeros(
        n_clips, logits.shape[1], dtype=values.dtype, device=logits.device
    )
    sums.index_add_(0, index, values)
    counts = torch.bincount(index, minlength=n_clips).unsqueeze(1)
    means = sums / counts.to(values.dtype)
    if method == "mean_log_prob":
        scores = F.log_softmax(means, dim=-1)
    else:
        scores = means.clamp_min(torch.finfo(means.dtype).tiny).log()
    return list(order), scores.to(logits.dtype)


def cut_patches(x, lens, patch_frames, hop=None):
    """Cut every clip of a batch into patches of ``patch_frames`` frames.

    Only each clip's real frames (by its relative length) are cut; a
    remainder at the end becomes one more, zero-padded patch, whose
    relative length tells the classifier where its real frames end.

    Arguments
    ---------
    x : torch.Tensor
        ``[batch, frames, bands]`` features.
    lens : torch.Tensor or None
        Relative lengths of the clips (None: all frames are real).
    patch_frames : int
        Frames per patch.
    hop : int, optional
        Frames between patch starts (default ``patch_frames``).

    Returns
    -------
    torch.Tensor
        ``[n_patches, patch_frames, bands]`` patches of all clips.
    torch.Tensor
        ``[n_patches]`` index of each patch's clip in the batch.
    torch.Tensor
        ``[n_patches]`` relative lengths of the patches.

    Example
    -------
    >>> x = torch.randn(2, 401, 80)
    >>> patches, owner, plens = cut_patches(x, torch.ones(2), 51)
    >>> patches.shape, owner.tolist()
    (torch.Size([16, 51, 80]), [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    >>> round(float(plens[7]), 4)  # 401 - 7 * 51 = 44 real frames
    0.8627
    """
    hop = patch_frames if hop is None else hop
    batch, n_frames, _ = x.shape
    if lens is None:
        n_real = [n_frames] * batch
    else:
        n_real = [
            max(1, min(n_frames, int(round(float(v) * n_frames))))
            for v in lens
        ]
    patches, owner, plens = [], [], []
    for b in range(batch):
        p = split_into_patches(x[b, : n_real[b]], patch_frames, hop)
        patches.append(p)
        owner += [b] * p.shape[0]
        for i in range(p.shape[0]):
            real = min(patch_frames, n_real[b] - i * hop)
            plens.append(real / patch_frames)
    return (
        torch.cat(patches, dim=0),
        torch.tensor(owner, device=x.device),
        torch.tensor(plens, device=x.device, dtype=x.dtype),
    )
