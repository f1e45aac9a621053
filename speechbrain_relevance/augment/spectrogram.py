"""Spectrogram-level augmentation: SpecAugment masks, random crop, mixup.

The reference applies, in this order, after relevance weighting, min-max
scaling and deltas: one frequency and one time mask per example
(:func:`spec_augment`), a random crop of 400 of the 423 frames
(:func:`random_crop`), concatenation of the heads, and mixup with one
lambda per batch (:func:`mixup`, :func:`mixup_loss`).

The masking and cropping functions take either one tensor
``[batch, channels, bands, frames]`` or a list of per-head tensors of that
layout (with equal numbers of frames), and return the same kind. All
functions keep the input's dtype and device and draw their random numbers
from ``generator`` when one is given (on the generator's device), else
from torch's global generator, so ``torch.manual_seed`` makes them
reproducible.

Authors
 * speechbrain-relevance developers
"""

import random

import torch
import torch.nn.functional as F


def _as_list(xs):
    """Return ``(list_of_tensors, was_single_tensor)``."""
    single = torch.is_tensor(xs)
    xs = [xs] if single else list(xs)
    if not xs:
        raise ValueError("expected a tensor or a non-empty list of tensors")
    for x in xs:
        if x.dim() != 4:
            raise ValueError(
                "expected [batch, channels, bands, frames] tensors, got shape "
                f"{tuple(x.shape)}"
            )
    if any(x.shape[0] != xs[0].shape[0] for x in xs):
        raise ValueError("all heads must have the same batch size")
    if any(x.shape[-1] != xs[0].shape[-1] for x in xs):
        raise ValueError("all heads must have the same number of frames")
    return xs, single


def _rng_device(generator, default):
    """Device to draw on: the generator's own, else ``default``."""
    return generator.device if generator is not None else default


def _draw_masks(batch, size, max_width, generator, device, real=None):
    """Draw one band (or frame) interval per example.

    The width is uniform on ``{0, ..., min(max_width, n)}`` and the
    start uniform on ``{0, ..., n - width}``, where ``n`` is ``size`` or,
    with ``real`` (``[batch]`` counts), each example's own count: a time
    mask then falls on the example's real frames, never on padding.

    Returns
    -------
    torch.Tensor
        ``[batch, size]`` bool mask (True = masked), on ``device``.
    """
    rdev = _rng_device(generator, device)
    if real is None:
        n = torch.full((batch,), size, dtype=torch.long, device=rdev)
    else:
        n = real.to(device=rdev, dtype=torch.long).clamp(0, size)
    top = torch.clamp(n, max=int(max_width))
    # floor(u * (top + 1)) is uniform on {0, ..., top}: one draw per
    # example whatever its own limit (a shared limit gives the same
    # numbers as torch.randint(0, top + 1)).
    if real is None:
        width = torch.randint(
            0, min(int(max_width), size) + 1, (batch,),
            generator=generator, device=rdev,
        )
    else:
        w = torch.rand(batch, generator=generator, device=rdev)
        width = torch.minimum((w * (top + 1).to(w.dtype)).long(), top)
    # floor(u * (n_positions)) is uniform on {0, ..., n - width}.
    u = torch.rand(batch, generator=generator, device=rdev)
    start = (u * (n - width + 1).to(u.dtype)).long()
    start = torch.minimum(start, n - width)
    start, width = start.to(device), width.to(device)
    pos = torch.arange(size, device=device)
    return (pos >= start[:, None]) & (pos < (start + width)[:, None])


def _apply(x, fmask, tmask, value):
    """Mask bands ``fmask [B, F]`` and frames ``tmask [B, T]`` of ``x``."""
    mask = fmask[:, None, :, None] | tmask[:, None, None, :]
    return x.masked_fill(mask, value)


def spec_augment(
    x,
    freq_mask_max=12,
    time_mask_max=39,
    aligned=True,
    generator=None,
    freq_positions="concat",
    mask_value=0.0,
    lengths=None,
):
    """Mask one band interval and one frame interval of every example.

    The masks always cover all channels (features, deltas and
    delta-deltas) of an example at the same positions.

    With ``aligned=True`` every head of an example is masked at the same
    positions: one time mask at the same frames in all heads, and one
    frequency mask placed according to ``freq_positions``:

    * ``"concat"`` (default): the band interval is drawn on the
      concatenated band axis of all heads (``sum(bands_h)`` bands), so an
      example gets exactly one frequency mask of at most ``freq_mask_max``
      bands, which may fall in one head or straddle two; it is then the
      same as masking the concatenated representation.
    * ``"per_head"``: the interval is drawn relative to a head's bands
      (on the smallest head's band count) and the same relative bands are
      masked in every head, like replaying one random state per head.

    With ``aligned=False`` every head gets its own frequency and time mask,
    drawn independently (positions relative to the head).

    Arguments
    ---------
    x : torch.Tensor or list of torch.Tensor
        ``[batch, channels, bands, frames]`` or a list of such tensors, one
        per head.
    freq_mask_max : int
        Largest frequency mask width; the width is uniform on
        ``{0, ..., freq_mask_max}`` bands.
    time_mask_max : int
        Largest time mask width; uniform on ``{0, ..., time_mask_max}``
        frames.
    aligned : bool
        Same mask positions for all heads (True) or independent (False).
    generator : torch.Generator, optional
        Source of randomness.
    freq_positions : str
        ``"concat"`` or ``"per_head"``, see above (``aligned=True`` only).
    mask_value : float
        Value written into masked bins (0 is the minimum of the min-max
        scaled features).
    lengths : torch.Tensor, optional
        ``[batch]`` relative lengths: each time mask is drawn within its
        example's real frames (in a batch of clips of different lengths,
        a mask drawn on the padded length often lands on padding).

    Returns
    -------
    torch.Tensor or list of torch.Tensor
        Masked copy, same structure, shapes, dtype and device as ``x``.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> heads = [torch.ones(4, 3, 40, 423), torch.ones(4, 3, 40, 423)]
    >>> out = spec_augment(heads, generator=g)
    >>> [tuple(h.shape) for h in out]
    [(4, 3, 40, 423), (4, 3, 40, 423)]
    >>> bool((out[0][:, 0] == out[0][:, 2]).all())  # channels aligned
    True
    """
    xs, single = _as_list(x)
    if freq_positions not in ("concat", "per_head"):
        raise ValueError(
            "freq_positions must be 'concat' or 'per_head', got "
            f"{freq_positions!r}"
        )
    batch, n_frames = xs[0].shape[0], xs[0].shape[-1]
    device = xs[0].device
    bands = [h.shape[2] for h in xs]
    real = None
    if lengths is not None:
        real = torch.round(lengths.float() * n_frames).long()

    if not aligned:
        out = []
        for h in xs:
            fmask = _draw_masks(
                batch, h.shape[2], freq_mask_max, generator, device
            )
            tmask = _draw_masks(
                batch, n_frames, time_mask_max, generator, device, real
            )
            out.append(_apply(h, fmask, tmask, mask_value))
        return out[0] if single else out

    if freq_positions == "concat":
        fmask = _draw_masks(batch, sum(bands), freq_mask_max, generator, device)
        fmasks = list(fmask.split(bands, dim=1))
    else:
        fmask = _draw_masks(batch, min(bands), freq_mask_max, generator, device)
        fmasks = [F.pad(fmask, (0, b - min(bands))) for b in bands]
    tmask = _draw_masks(
        batch, n_frames, time_mask_max, generator, device, real
    )
    out = [_apply(h, fm, tmask, mask_value) for h, fm in zip(xs, fmasks)]
    return out[0] if single else out


def random_crop(xs, n_frames=400, generator=None):
    """Crop ``n_frames`` consecutive frames at a random start per example.

    Every example gets its own start, uniform on
    ``{0, ..., frames - n_frames}``, shared by all heads (and channels), so
    the heads stay time-aligned. Inputs with at most ``n_frames`` frames
    are returned unchanged.

    Arguments
    ---------
    xs : torch.Tensor or list of torch.Tensor
        ``[batch, channels, bands, frames]`` or a list of such tensors.
    n_frames : int
        Frames to keep.
    generator : torch.Generator, optional
        Source of randomness.

    Returns
    -------
    torch.Tensor or list of torch.Tensor
        Cropped tensors ``[batch, channels, bands, n_frames]``, same
        structure as ``xs``.

    Example
    -------
    >>> x = torch.arange(10.0).expand(2, 1, 1, 10)
    >>> y = random_crop([x, x], n_frames=4)
    >>> y[0].shape
    torch.Size([2, 1, 1, 4])
    >>> torch.equal(y[0], y[1])
    True
    """
    heads, single = _as_list(xs)
    batch, total = heads[0].shape[0], heads[0].shape[-1]
    if total <= n_frames:
        return heads[0] if single else heads
    device = heads[0].device
    rdev = _rng_device(generator, device)
    start = torch.randint(
        0, total - n_frames + 1, (batch,), generator=generator, device=rdev
    ).to(device)
    index = start[:, None] + torch.arange(n_frames, device=device)
    out = []
    for h in heads:
        idx = index[:, None, None, :].expand(*h.shape[:-1], n_frames)
        out.append(torch.gather(h, -1, idx))
    return out[0] if single else out


def mixup(x, y, alpha=0.4, generator=None):
    """Mix every example with a random partner of the same batch.

    ``x_mix = lam * x + (1 - lam) * x[perm]`` with one
    ``lam ~ Beta(alpha, alpha)`` for the whole batch and a random
    permutation ``perm``. Train with :func:`mixup_loss`.

    Arguments
    ---------
    x : torch.Tensor
        ``[batch, ...]`` inputs (the concatenated heads).
    y : torch.Tensor
        ``[batch, ...]`` targets (class indices or one-hot).
    alpha : float
        Beta distribution parameter; ``alpha <= 0`` disables mixing
        (``lam = 1``).
    generator : torch.Generator, optional
        Source of randomness (for the permutation and for the seed of the
        Beta draw).

    Returns
    -------
    torch.Tensor
        Mixed inputs, same shape and dtype as ``x``.
    torch.Tensor
        ``y`` (targets of the first component).
    torch.Tensor
        ``y[perm]`` (targets of the partners).
    float
        ``lam``.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(8, 3, 80, 400), torch.arange(8)
    >>> x_mix, y_a, y_b, lam = mixup(x, y, generator=g)
    >>> perm = y_b
    >>> torch.allclose(x_mix, lam * x + (1 - lam) * x[perm])
    True
    """
    batch = x.shape[0]
    rdev = _rng_device(generator, x.device)
    if alpha > 0:
        # torch's Beta sampler takes no generator: derive a seed from the
        # torch generator so the draw is reproducible either way.
        seed = int(
            torch.randint(
                0, 2**62, (1,), generator=generator, device=rdev
            ).item()
        )
        lam = random.Random(seed).betavariate(alpha, alpha)
    else:
        lam = 1.0
    perm = torch.randperm(batch, generator=generator, device=rdev)
    perm = perm.to(x.device)
    x_mix = lam * x + (1.0 - lam) * x.index_select(0, perm)
    y_b = y.index_select(0, perm.to(y.device))
    return x_mix, y, y_b, lam


def mixup_loss(logits, y_a, y_b, lam, **kwargs):
    """Mixup criterion ``lam * CE(y_a) + (1 - lam) * CE(y_b)``.

    Arguments
    ---------
    logits : torch.Tensor
        ``[batch, n_classes]`` logits.
    y_a : torch.Tensor
        Targets of the first component (class indices or probabilities,
        as for :func:`torch.nn.functional.cross_entropy`).
    y_b : torch.Tensor
        Targets of the partners.
    lam : float or torch.Tensor
        Mixing weight returned by :func:`mixup`.
    **kwargs : dict
        Passed to :func:`torch.nn.functional.cross_entropy` (e.g.
        ``reduction``, ``label_smoothing``).

    Returns
    -------
    torch.Tensor
        The loss (a scalar with the default mean reduction).

    Example
    -------
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> y_a, y_b = torch.tensor([0, 1]), torch.tensor([1, 0])
    >>> loss = mixup_loss(logits, y_a, y_b, 0.75)
    >>> ce = torch.nn.functional.cross_entropy
    >>> torch.allclose(loss, 0.75 * ce(logits, y_a) + 0.25 * ce(logits, y_b))
    True
    """
    loss_a = F.cross_entropy(logits, y_a, **kwargs)
    loss_b = F.cross_entropy(logits, y_b, **kwargs)
    return lam * loss_a + (1.0 - lam) * loss_b
