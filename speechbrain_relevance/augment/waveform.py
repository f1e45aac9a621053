"""Waveform augmentation that SpeechBrain's ``speechbrain.augment`` lacks.

SpeechBrain's :class:`~speechbrain.augment.augmenter.Augmenter` combines
waveform augmentations (``SpeedPerturb``, ``DropFreq``, ``DropChunk``,
``RandAmp``, ...); every one of them keeps a clip where it is in its
frames. :class:`RandomShift` adds the missing time shift, in the same
``forward(waveforms, lengths) -> (waveforms, lengths)`` form, so that it
plugs into an ``Augmenter`` next to them.

Authors
 * speechbrain-relevance developers
"""

import torch
from torch import nn


def shift_waveforms(wavs, lengths, shifts, max_shift):
    """Delay every waveform by its own number of samples.

    Each clip is moved ``shifts[i]`` samples later, zeros in front; the
    batch grows (by at most ``max_shift`` samples) to its longest shifted
    clip, so that no clip loses its end, and the padding after each clip
    stays zero.

    Arguments
    ---------
    wavs : torch.Tensor
        ``[batch, time]`` waveforms.
    lengths : torch.Tensor
        ``[batch]`` relative lengths.
    shifts : torch.Tensor
        ``[batch]`` integer delays in samples, each in ``[0, max_shift]``.
    max_shift : int
        The largest allowed delay (checked).

    Returns
    -------
    torch.Tensor
        ``[batch, time']`` shifted waveforms, ``time' <= time + max_shift``.
    torch.Tensor
        ``[batch]`` relative lengths of the shifted clips.

    Example
    -------
    >>> wavs = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])
    >>> out, lens = shift_waveforms(
    ...     wavs, torch.tensor([1.0, 2 / 3]), torch.tensor([0, 2]), 2
    ... )
    >>> out
    tensor([[1., 2., 3., 0.],
            [0., 0., 4., 5.]])
    >>> lens
    tensor([0.7500, 1.0000])
    """
    if shifts.numel() and (shifts.min() < 0 or shifts.max() > max_shift):
        raise ValueError(f"shifts must lie in [0, {max_shift}]")
    batch, n_time = wavs.shape[0], wavs.shape[1]
    shifts = shifts.to(device=wavs.device, dtype=torch.long)
    n_real = torch.round(lengths.to(wavs.device).float() * n_time).long()
    ends = n_real + shifts
    # The batch ends with its longest shifted clip (relative length 1).
    total = max(int(ends.max()), 1)
    # Output sample t of clip i is input sample t - shifts[i] (or zero).
    src = torch.arange(total, device=wavs.device)[None, :] - shifts[:, None]
    valid = (src >= 0) & (src < n_real[:, None])
    index = src.clamp(0, n_time - 1)
    if wavs.dim() > 2:
        index = index.view(batch, total, *([1] * (wavs.dim() - 2)))
        index = index.expand(batch, total, *wavs.shape[2:])
        valid = valid.view(batch, total, *([1] * (wavs.dim() - 2)))
    out = torch.gather(wavs, 1, index) * valid.to(wavs.dtype)
    return out, (ends.to(lengths.dtype) / total).to(lengths.device)


class RandomShift(nn.Module):
    """Time shift for SpeechBrain's ``Augmenter``: a random delay per clip.

    Every clip of the batch is delayed by a number of samples drawn
    uniformly from ``{0, ..., max_shift}`` (torch's global generator, so
    ``seed_everything`` and checkpointed generator states make it
    reproducible). Nothing of a clip is cut: the batch grows to its
    longest shifted clip and the relative lengths follow, so the
    front-end and the classifier still know where each clip ends. It
    moves the clip against the analysis frames and adds a short silence
    in front, as an unaligned recording would have.

    Arguments
    ---------
    max_shift : int
        Largest delay in samples (e.g. 400 = 50 ms at 8 kHz).

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> shift = RandomShift(max_shift=400)
    >>> wavs, lens = shift(torch.randn(4, 8000), torch.ones(4))
    >>> 8000 < wavs.shape[1] <= 8400, bool((lens > 0.95).all())
    (True, True)
    >>> float(lens.max())
    1.0
    """

    def __init__(self, max_shift=400):
        super().__init__()
        if int(max_shift) != max_shift or max_shift < 0:
            raise ValueError(
                "RandomShift: max_shift must be a whole number of samples "
                f">= 0, got {max_shift!r}"
            )
        self.max_shift = int(max_shift)

    def forward(self, waveforms, lengths):
        """Delay every clip by a random number of samples.

        Arguments
        ---------
        waveforms : torch.Tensor
            ``[batch, time]`` (or ``[batch, time, channels]``) waveforms.
        lengths : torch.Tensor
            ``[batch]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[batch, time', ...]`` shifted waveforms
            (``time' <= time + max_shift``).
        torch.Tensor
            ``[batch]`` relative lengths.
        """
        if self.max_shift == 0:
            return waveforms, lengths
        shifts = torch.randint(0, self.max_shift + 1, (waveforms.shape[0],))
        return shift_waveforms(waveforms, lengths, shifts, self.max_shift)
