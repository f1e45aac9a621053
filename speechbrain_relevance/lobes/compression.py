"""Learnable compression of band energies (log with offsets, PCEN).

Both modules map non-negative band energies ``[batch, frames, n_bands]``
to features of the same shape, computing in float32 even under autocast.
Pass one as ``compression`` to a learnable filterbank (or to
:class:`~speechbrain_relevance.lobes.mel.MelFilterbank`) to replace its
fixed ``log(energy + log_eps)``.

Authors
 * speechbrain-relevance developers
"""

import math

import torch
import torch.nn as nn

from speechbrain_relevance.lobes import functional as fb


class LogCompression(nn.Module):
    """Logarithm with a learnable offset per band.

    ``out = log(x + exp(log_eps_k))``. The offset sets the floor under
    which a band's energy no longer matters (silence maps to ``log_eps``);
    learning it in log space keeps it positive. With ``learnable=False`` it
    is a persistent buffer: same state-dict key, so checkpoints move
    between the two settings.

    Arguments
    ---------
    n_bands : int
        Number of bands (last input axis).
    eps : float
        Initial offset of every band (> 0).
    learnable : bool
        If True, ``log_eps`` is a parameter; else a fixed buffer.

    Example
    -------
    >>> comp = LogCompression(40)
    >>> out = comp(torch.rand(2, 101, 40))
    >>> out.shape, out.dtype
    (torch.Size([2, 101, 40]), torch.float32)
    >>> [name for name, _ in comp.named_parameters()]
    ['log_eps']
    """

    def __init__(self, n_bands, eps=1e-3, learnable=True):
        super().__init__()
        fb.check_positive_int("n_bands", n_bands)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.n_bands = n_bands
        self.learnable = bool(learnable)
        _register(self, "log_eps", torch.full((n_bands,), math.log(eps)))

    def forward(self, x):
        """Compress energies.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, frames, n_bands]`` non-negative energies.

        Returns
        -------
        torch.Tensor
            ``[batch, frames, n_bands]`` log energies in float32.
        """
        _check_input(self, x)
        # Energies span many decades: keep fp32 under bf16/fp16 autocast.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return fb.log_compression(x.float(), self.log_eps)

    def extra_repr(self):
        """Summarise the configuration."""
        return f"n_bands={self.n_bands}, learnable={self.learnable}"


class PCEN(nn.Module):
    """Per-channel energy normalisation, parameters learned in log space.

    ``out = (x / (floor + M)^alpha + delta)^(1/root) - delta^(1/root)``,
    where ``M[t] = (1 - s) M[t-1] + s x[t]`` (``M[0] = x[0]``) smooths
    every band along the frames (Wang et al., 2017; per-band learnable
    smoothing as LEAF's sPCEN, Zeghidour et al., 2021). The smoother runs
    as an IIR filter (``torchaudio.functional.lfilter``), not a Python
    loop over frames.

    Parametrisation (per band, ``[n_bands]`` each):

    * ``log_alpha``, ``log_delta``, ``log_root``: logs of alpha, delta and
      root, so delta and root stay positive whatever the step (as in
      EfficientLEAF). As in LEAF, alpha is then clamped to at most 1 (more
      than full gain normalisation would invert the loudness order) and
      root to at least 1 (the output stays a compressive root); a clamped
      value gets no gradient until the optimiser moves it back.
    * ``logit_smooth``: the logit of ``s``, ``s = sigmoid(logit_smooth)``,
      so ``s`` stays in (0, 1) and the smoother stable. ``[n_bands]``
      with ``per_band_smooth=True``, else ``[1]`` (one ``s`` shared).

    With ``learnable=False`` the same four tensors are persistent buffers
    (same state-dict keys). Silence gives exactly 0 with finite gradients
    (``floor`` bounds the gain, ``delta > 0`` the root's slope).

    SpeechBrain's :class:`speechbrain.nnet.normalization.PCEN` learns alpha,
    delta and root directly, so one large step can make delta or root
    negative (NaN from a fractional power), and smooths with a loop over
    frames; this module avoids both, hence a separate class.

    Arguments
    ---------
    n_bands : int
        Number of bands (last input axis).
    alpha : float
        Initial gain-normalisation exponent, in (0, 1].
    smooth_coef : float
        Initial smoothing coefficient ``s``, in (0, 1).
    delta : float
        Initial offset (> 0).
    root : float
        Initial root (>= 1).
    floor : float
        Added to ``M`` before the power (> 0), fixed.
    learnable : bool
        If True, the parameters are trained.
    per_band_smooth : bool
        If True, one smoothing coefficient per band; else one shared.

    Example
    -------
    >>> pcen = PCEN(40)
    >>> out = pcen(torch.rand(2, 101, 40))
    >>> out.shape, out.dtype
    (torch.Size([2, 101, 40]), torch.float32)
    >>> sorted(name for name, _ in pcen.named_parameters())
    ['log_alpha', 'log_delta', 'log_root', 'logit_smooth']
    >>> float(pcen(torch.zeros(1, 5, 40)).detach().abs().max())
    0.0
    """

    def __init__(
        self,
        n_bands,
        alpha=0.96,
        smooth_coef=0.04,
        delta=2.0,
        root=2.0,
        floor=1e-6,
        learnable=True,
        per_band_smooth=True,
    ):
        super().__init__()
        fb.check_positive_int("n_bands", n_bands)
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0 < smooth_coef < 1:
            raise ValueError(
                f"smooth_coef must be in (0, 1), got {smooth_coef}"
            )
        if not delta > 0:
            raise ValueError(f"delta must be > 0, got {delta}")
        if not root >= 1:
            raise ValueError(f"root must be >= 1, got {root}")
        if not floor > 0:
            raise ValueError(f"floor must be > 0, got {floor}")
        self.n_bands = n_bands
        self.floor = float(floor)
        self.learnable = bool(learnable)
        self.per_band_smooth = bool(per_band_smooth)
        ones = torch.ones(n_bands)
        n_smooth = n_bands if per_band_smooth else 1
        logit = math.log(smooth_coef / (1 - smooth_coef))
        _register(self, "log_alpha", ones * math.log(alpha))
        _register(self, "log_delta", ones * math.log(delta))
        _register(self, "log_root", ones * math.log(root))
        _register(self, "logit_smooth", torch.full((n_smooth,), logit))

    def forward(self, x):
        """Normalise energies.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, frames, n_bands]`` non-negative energies.

        Returns
        -------
        torch.Tensor
            ``[batch, frames, n_bands]`` PCEN features in float32.
        """
        _check_input(self, x)
        # The gain (floor + M)^-alpha reaches 1e5 and more: bf16 would
        # round it away, so compute in fp32 under autocast.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return fb.pcen(
                x.float(),
                alpha=torch.exp(self.log_alpha).clamp(max=1.0),
                delta=torch.exp(self.log_delta),
                root=torch.exp(self.log_root).clamp(min=1.0),
                smooth_coef=torch.sigmoid(self.logit_smooth),
                floor=self.floor,
            )

    def extra_repr(self):
        """Summarise the configuration."""
        return (
            f"n_bands={self.n_bands}, floor={self.floor}, "
            f"learnable={self.learnable}, "
            f"per_band_smooth={self.per_band_smooth}"
        )


#: Names accepted by :func:`make_compression`.
COMPRESSIONS = ("log", "learned_log", "pcen")


def make_compression(kind, n_bands):
    """Build a front-end's compression from its name (for yaml switches).

    Lets one hyperparameter choose the compression of any front-end, e.g.
    ``compression: !apply:speechbrain_relevance.lobes.make_compression``
    with ``kind: !ref <compression>``, so that ``--compression=pcen`` on
    the command line switches it.

    Arguments
    ---------
    kind : str or None
        ``"log"`` or None (the front-end's fixed ``log(e + log_eps)``:
        returns None), ``"learned_log"`` (:class:`LogCompression`) or
        ``"pcen"`` (:class:`PCEN`), with their default settings.
    n_bands : int
        Bands of the front-end.

    Returns
    -------
    torch.nn.Module or None
        The module to pass as the front-end's ``compression``.

    Example
    -------
    >>> make_compression("log", 40) is None
    True
    >>> type(make_compression("pcen", 40)).__name__
    'PCEN'
    >>> make_compression("cube_root", 40)
    Traceback (most recent call last):
    ...
    ValueError: compression must be one of ('log', ...), got 'cube_root'
    """
    if kind is None or kind == "log":
        return None
    if kind == "learned_log":
        return LogCompression(n_bands)
    if kind == "pcen":
        return PCEN(n_bands)
    raise ValueError(f"compression must be one of {COMPRESSIONS}, got {kind!r}")


def _register(module, name, value):
    """Register ``value`` as a parameter or, if fixed, a saved buffer."""
    if module.learnable:
        module.register_parameter(name, nn.Parameter(value))
    else:
        module.register_buffer(name, value)


def _check_input(module, x):
    if x.dim() != 3 or x.shape[-1] != module.n_bands:
        raise ValueError(
            f"{type(module).__name__} expects [batch, frames, "
            f"{module.n_bands}] energies, got shape {tuple(x.shape)}"
        )
