"""The paper's Figures 2 and 3 for trained models.

* Figure 2: centre frequency (Hz) against band index of the learnt
  filterbank, the mel filterbank with the same number of filters over the
  same range, and optionally a learnt SincNet filterbank of another run;
  plus the learnt filters' power responses ``|rfft(kernel)|^2`` in dB.
* Figure 3: for one clip, (a) the mel spectrogram, (b) the learnt
  representation (front-end output), one panel per relevance head with its
  mask, and the final weighted, min-max scaled representation with the
  heads concatenated in the order the classifier sees them.

Data and drawing are separate: ``*_curves`` / ``*_responses`` /
``representation_panels`` return numpy arrays, ``plot_*`` draw them. The
plots use :class:`matplotlib.figure.Figure` directly (no ``pyplot``), so
they render with Agg whatever the interactive backend is, and leave no
global figure state behind. matplotlib is only needed for the ``plot_*``
functions (``pip install speechbrain-relevance[plots]``).

Authors
 * speechbrain-relevance developers
"""

import numpy as np
import torch

from speechbrain_relevance.analysis.movement import magnitude_responses
from speechbrain_relevance.lobes import functional as fb
from speechbrain_relevance.lobes.filterbanks import (
    CosGaussFilterbank,
    SincFilterbank,
)

#: Curve colours of the paper's Figure 2 (mel orange, Cos-Gauss blue,
#: SincNet green); other filterbanks get the next colour.
_COLOURS = {"mel": "C1", "cosgauss": "C0", "sinc": "C2"}


def _figure(**kwargs):
    """Return a pyplot-free figure (rendered with Agg on savefig)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "Plotting needs matplotlib: pip install "
            "'speechbrain-relevance[plots]'"
        ) from e
    return Figure(**kwargs)


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=fig.dpi, bbox_inches="tight")
    return fig


def is_learnable_filterbank(module):
    """Return True if ``module`` exposes learnt filters.

    Arguments
    ---------
    module : torch.nn.Module or None
        A front-end.

    Returns
    -------
    bool
        Whether it has ``center_frequencies()`` and ``kernels()``.

    Example
    -------
    >>> is_learnable_filterbank(CosGaussFilterbank(n_filters=4))
    True
    >>> is_learnable_filterbank(torch.nn.Identity())
    False
    """
    return callable(getattr(module, "center_frequencies", None)) and callable(
        getattr(module, "kernels", None)
    )


def filterbank_label(module):
    """Legend label of a learnt filterbank.

    Arguments
    ---------
    module : torch.nn.Module
        A filterbank.

    Returns
    -------
    str
        ``"learnt Cos-Gauss"``, ``"learnt SincNet"`` or the class name.

    Example
    -------
    >>> filterbank_label(CosGaussFilterbank(n_filters=4))
    'learnt Cos-Gauss'
    """
    if isinstance(module, CosGaussFilterbank):
        return "learnt Cos-Gauss"
    if isinstance(module, SincFilterbank):
        return "learnt SincNet"
    return f"learnt {type(module).__name__}"


def _colour(label):
    if label.startswith("mel"):
        return _COLOURS["mel"]
    if "Cos-Gauss" in label:
        return _COLOURS["cosgauss"]
    if "SincNet" in label:
        return _COLOURS["sinc"]
    return None


def center_frequency_curves(filterbank, sinc=None, f_min=0.0, f_max=None):
    """Centre frequencies of Figure 2, each ascending, in Hz.

    The mel reference has as many filters as the first learnt filterbank,
    spaced over ``[f_min, f_max]`` (by default 0 Hz to Nyquist, the range
    of the recipes' mel initialisation and of the log-mel baseline).

    Arguments
    ---------
    filterbank : torch.nn.Module or None
        The analysed model's front-end; ignored unless it is a learnable
        filterbank (e.g. the log-mel baseline's ``Fbank``).
    sinc : torch.nn.Module, optional
        A second learnt filterbank (the paper: SincNet).
    f_min : float
        Lowest edge of the mel reference, in Hz.
    f_max : float, optional
        Highest edge of the mel reference (default Nyquist).

    Returns
    -------
    dict
        Legend label -> ``[n_filters]`` float64 array; the mel reference
        first, under ``"mel filterbank"``.

    Example
    -------
    >>> curves = center_frequency_curves(CosGaussFilterbank(n_filters=8))
    >>> list(curves)
    ['mel filterbank', 'learnt Cos-Gauss']
    >>> bool(np.allclose(curves["mel filterbank"],
    ...                  curves["learnt Cos-Gauss"], rtol=1e-4))
    True
    """
    learnt = [m for m in (filterbank, sinc) if is_learnable_filterbank(m)]
    if not learnt:
        raise ValueError(
            "No learnable filterbank to plot: the front-end "
            f"{type(filterbank).__name__} has no centre frequencies"
        )
    first = learnt[0]
    n_filters = int(first.center_frequencies().numel())
    if f_max is None:
        f_max = first.sample_rate / 2
    curves = {
        "mel filterbank": fb.mel_center_frequencies(n_filters, f_min, f_max)
        .double()
        .numpy()
    }
    for module in learnt:
        label = filterbank_label(module)
        while label in curves:  # e.g. two Cos-Gauss runs
            label += " (2)"
        curves[label] = module.center_frequencies().double().cpu().numpy()
    return curves


def plot_center_frequencies(curves, path=None, title=None):
    """Draw Figure 2: centre frequency against band index.

    Arguments
    ---------
    curves : dict
        Label -> centre frequencies in Hz (from
        :func:`center_frequency_curves`).
    path : str, optional
        Where to save the figure (PNG by extension).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    fig = _figure(figsize=(5.5, 4.0), dpi=120)
    ax = fig.add_subplot()
    for label, hz in curves.items():
        ax.plot(
            np.arange(len(hz)),
            np.asarray(hz) / 1000,
            label=label,
            color=_colour(label),
            linewidth=1.6,
        )
    ax.set_xlabel("Band index")
    ax.set_ylabel("Centre frequency (kHz)")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def filter_responses(filterbank, n_fft=None):
    """Power responses ``|rfft(kernel)|^2`` of all learnt filters, in dB.

    Arguments
    ---------
    filterbank : torch.nn.Module
        A learnable filterbank (``kernels()``, ``sample_rate``).
    n_fft : int, optional
        FFT size (default the filterbank's ``n_fft``, else the next power
        of two of 4 kernel lengths).

    Returns
    -------
    numpy.ndarray
        ``[n_fft // 2 + 1]`` frequencies in Hz.
    numpy.ndarray
        ``[n_filters, n_fft // 2 + 1]`` ``10 log10 |G|^2``, filters sorted
        by centre frequency.

    Example
    -------
    >>> bank = CosGaussFilterbank(n_filters=4, sample_rate=16000,
    ...                           win_length=400, hop_length=160,
    ...                           kernel_size=201)
    >>> hz, db = filter_responses(bank, n_fft=512)
    >>> hz.shape, db.shape, float(hz[-1])
    ((257,), (4, 257), 8000.0)
    >>> peaks = hz[db.argmax(axis=1)]
    >>> bool(np.all(np.diff(peaks) > 0))
    True
    """
    if n_fft is None:
        n_fft = getattr(filterbank, "n_fft", None)
    magnitude = magnitude_responses(filterbank, n_fft)
    n_fft = 2 * (magnitude.shape[-1] - 1)
    power = magnitude.pow(2).numpy()
    # Floor far below any real response so that exact zeros stay finite.
    db = 10 * np.log10(np.maximum(power, 1e-30))
    hz = np.fft.rfftfreq(n_fft, d=1.0 / filterbank.sample_rate)
    return hz, db


def plot_filter_responses(hz, db, path=None, title=None, dynamic_range=60.0):
    """Draw the filters' power responses, coloured by band index.

    Arguments
    ---------
    hz : numpy.ndarray
        Frequencies in Hz.
    db : numpy.ndarray
        ``[n_filters, n_freqs]`` responses in dB.
    path : str, optional
        Where to save the figure.
    title : str, optional
        Figure title.
    dynamic_range : float
        dB shown below the strongest response.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    from matplotlib import cm, colors

    fig = _figure(figsize=(7.0, 4.0), dpi=120)
    ax = fig.add_subplot()
    n_filters = db.shape[0]
    norm = colors.Normalize(vmin=0, vmax=max(n_filters - 1, 1))
    cmap = cm.viridis
    for i in range(n_filters):
        ax.plot(hz / 1000, db[i], color=cmap(norm(i)), linewidth=0.7)
    top = float(db.max())
    ax.set_ylim(top - dynamic_range, top + 3)
    ax.set_xlim(0, hz[-1] / 1000)
    ax.set_xlabel("Frequency (kHz)")
    ax.set_ylabel("|G(f)|$^2$ (dB)")
    ax.grid(alpha=0.3)
    bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax)
    bar.set_label("Band index")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def framing(frontend, default=(2048, 1024)):
    """Frame length and hop, in samples, of a front-end.

    Arguments
    ---------
    frontend : torch.nn.Module
        A learnable filterbank or SpeechBrain's ``Fbank``.
    default : tuple of int
        Returned for front-ends that do not say.

    Returns
    -------
    tuple of int
        ``(win_length, hop_length)``.

    Example
    -------
    >>> framing(CosGaussFilterbank(n_filters=4))
    (2048, 1024)
    """
    if hasattr(frontend, "win_length") and hasattr(frontend, "hop_length"):
        return int(frontend.win_length), int(frontend.hop_length)
    stft = getattr(frontend, "compute_STFT", None)  # speechbrain Fbank
    if stft is not None:
        return int(stft.win_length), int(stft.hop_length)
    return default


def _device_of(module):
    """Device of a module's tensors (CPU for a module without any)."""
    # A log-mel front-end has buffers but no parameters: look at both.
    tensors = [*module.parameters(), *module.buffers()]
    return tensors[0].device if tensors else torch.device("cpu")


def _is_fbank(module):
    return hasattr(module, "compute_STFT") and hasattr(module, "compute_fbanks")


def mel_spectrogram(wav, sample_rate, frontend=None, n_mels=None):
    """Log-mel spectrogram framed like a front-end (Figure 3a).

    A log-mel front-end (SpeechBrain ``Fbank``) is used as it is;
    otherwise an ``Fbank`` with the front-end's frame length, hop and band
    count, 0 Hz to Nyquist, as the recipes' log-mel baseline.

    Arguments
    ---------
    wav : torch.Tensor
        ``[time]`` waveform.
    sample_rate : int
        Its sample rate.
    frontend : torch.nn.Module, optional
        The model's front-end, for the framing and band count.
    n_mels : int, optional
        Band count (default the front-end's, else 80).

    Returns
    -------
    numpy.ndarray
        ``[frames, n_mels]`` log-mel energies.

    Example
    -------
    >>> mel_spectrogram(torch.randn(16000), 16000, n_mels=40).shape
    (16, 40)
    """
    from speechbrain.lobes.features import Fbank

    with torch.no_grad():
        if _is_fbank(frontend) and n_mels is None:
            wav = wav[None].float().to(_device_of(frontend))
            return frontend(wav)[0].cpu().numpy()
        win, hop = framing(frontend)
        if n_mels is None:
            n_mels = getattr(frontend, "n_filters", None) or 80
        mel = Fbank(
            sample_rate=sample_rate,
            n_fft=win,
            n_mels=int(n_mels),
            win_length=win * 1000 / sample_rate,
            hop_length=hop * 1000 / sample_rate,
        )
        return mel(wav[None].float().cpu())[0].numpy()


def representation_panels(pipeline, wav, sample_rate, max_mask_panels=4):
    """Compute the data of Figure 3 for one waveform.

    Runs the model's own
    :class:`~speechbrain_relevance.pipeline.ClassificationPipeline` up to
    the classifier: front-end, then the relevance lobe (weighting,
    skip-add, per-head min-max scaling) and the run's feature
    normalisation; the heads are then concatenated along the band axis as
    the classifier receives them (before its deltas and augmentation).

    Arguments
    ---------
    pipeline : speechbrain_relevance.pipeline.ClassificationPipeline
        The model (:attr:`TrainedModel.pipeline
        <speechbrain_relevance.analysis.TrainedModel>`).
    wav : torch.Tensor
        ``[time]`` waveform at ``sample_rate``, prepared (peak-normalised)
        as the model's clip policy does.
    sample_rate : int
        Sample rate in Hz.
    max_mask_panels : int
        With more heads than this, the masks share one panel (in band
        order) instead of one panel each.

    Returns
    -------
    dict
        ``"panels"``: in plotting order, dicts with ``"title"``,
        ``"data"`` (``[frames, bands]`` array), ``"boundaries"`` (band
        positions where heads meet, drawn as lines), ``"first_band"``
        (number of the lowest band) and ``"ylabel"``; ``"frame_period"``:
        seconds per frame of every panel; ``"head_bands"``: band indices
        per head (None without relevance); ``"masks"``: ``[frames, bands]``
        weights (None without relevance).

    Example
    -------
    >>> from speechbrain_relevance.lobes import MultiHeadRelevance
    >>> from speechbrain_relevance.pipeline import ClassificationPipeline
    >>> bank = CosGaussFilterbank(n_filters=8, sample_rate=16000,
    ...                           win_length=400, hop_length=160,
    ...                           kernel_size=201)
    >>> rel = MultiHeadRelevance(n_bands=8, n_heads=2, context=2)
    >>> pipeline = ClassificationPipeline(bank, None, relevance=rel)
    >>> out = representation_panels(pipeline, torch.randn(8000), 16000)
    >>> [p["title"][:3] for p in out["panels"]]
    ['(a)', '(b)', '(c)', '(d)', '(e)']
    >>> out["panels"][3]["title"], out["panels"][3]["first_band"]
    ('(d) mask of head 2 (bands 4-7)', 4)
    >>> out["panels"][-1]["data"].shape, out["panels"][-1]["boundaries"]
    ((51, 8), [4])
    """
    compute_features = pipeline.compute_features
    wav = wav.reshape(-1).float()
    device = _device_of(compute_features)
    lens = torch.ones(1, device=device)
    with torch.no_grad():
        rep = pipeline.represent(wav[None].to(device), lens)
        feats, masks = rep.features, rep.masks
        head_bands = None
        if pipeline.relevance is not None:
            head_bands = pipeline.head_bands(feats.shape[2])
        bands = head_bands or [list(range(feats.shape[2]))]
        concat = pipeline.join(pipeline.split_heads(rep.weighted))
    feats = feats[0].cpu().numpy()
    concat = concat[0].cpu().numpy()
    masks = masks[0].cpu().numpy() if masks is not None else None

    letters = iter("abcdefghijklmnopqrstuvwxyz")
    panels = [
        _panel(
            f"({next(letters)}) mel spectrogram",
            mel_spectrogram(wav.cpu(), sample_rate, compute_features),
            ylabel="Mel band",
        ),
        _panel(
            f"({next(letters)}) learnt representation (front-end output)"
            if is_learnable_filterbank(compute_features)
            else f"({next(letters)}) front-end output "
            f"({type(compute_features).__name__}, not learnt)",
            feats,
        ),
    ]
    if masks is not None and len(bands) <= max_mask_panels:
        for h, idx in enumerate(bands):
            contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
            # A contiguous head keeps the real band numbers on its axis; an
            # interleaved one can only be numbered within the head.
            panels.append(
                _panel(
                    f"({next(letters)}) mask of head {h + 1} "
                    f"({_describe_bands(idx)})",
                    masks[:, idx],
                    first_band=idx[0] if contiguous else 0,
                    ylabel="Band" if contiguous else "Band in head",
                )
            )
    elif masks is not None:
        panels.append(
            _panel(f"({next(letters)}) masks of all {len(bands)} heads", masks)
        )
    boundaries = [int(b) for b in np.cumsum([len(b) for b in bands])[:-1]]
    what = (
        "relevance-weighted, normalised"
        if masks is not None
        else "normalised"
    )
    suffix = ", heads concatenated" if len(bands) > 1 else ""
    panels.append(
        _panel(
            f"({next(letters)}) {what} representation{suffix}",
            concat,
            boundaries=boundaries,
            ylabel="Classifier input band",
        )
    )
    # The mel panel is framed like the front-end, so one period serves all.
    hop = framing(compute_features)[1]
    return {
        "panels": panels,
        "frame_period": hop / sample_rate,
        "head_bands": head_bands,
        "masks": masks,
    }


def _panel(title, data, boundaries=(), first_band=0, ylabel="Band"):
    """One image of Figure 3, as :func:`plot_representation` reads it."""
    return {
        "title": title,
        "data": data,
        "boundaries": list(boundaries),
        "first_band": int(first_band),
        "ylabel": ylabel,
    }


def _describe_bands(idx):
    """``"bands 0-39"`` for a contiguous range, else a count."""
    idx = list(idx)
    if len(idx) == 1:
        return f"band {idx[0]}"
    if idx == list(range(idx[0], idx[0] + len(idx))):
        return f"bands {idx[0]}-{idx[-1]}"
    return f"{len(idx)} bands: {idx[0]}, {idx[1]}, ..."


def plot_representation(panels, path=None, title=None, cmap="viridis"):
    """Draw Figure 3 from :func:`representation_panels`.

    Arguments
    ---------
    panels : dict
        Output of :func:`representation_panels`.
    path : str, optional
        Where to save the figure.
    title : str, optional
        Figure title (e.g. the clip's name).
    cmap : str
        Colour map of the images.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    items = panels["panels"]
    fig = _figure(
        figsize=(8.0, 1.9 * len(items) + 0.5), dpi=110, layout="constrained"
    )
    axes = fig.subplots(len(items), 1, sharex=True, squeeze=False)[:, 0]
    period = panels["frame_period"]
    for ax, item in zip(axes, items):
        n_frames, n_bands = item["data"].shape
        low = item["first_band"] - 0.5
        image = ax.imshow(
            item["data"].T,
            origin="lower",
            aspect="auto",
            interpolation="nearest",
            cmap=cmap,
            extent=(0, n_frames * period, low, low + n_bands),
        )
        for b in item["boundaries"]:
            ax.axhline(low + b, color="white", linestyle="--", linewidth=1)
        ax.set_title(item["title"], fontsize=10, loc="left")
        ax.set_ylabel(item["ylabel"])
        fig.colorbar(image, ax=ax, pad=0.01)
    axes[-1].set_xlabel("Time (s)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_learned_vs_initial(systems, path=None, title=None):
    """Draw where every filter went, system beside system (Figure 2 style).

    One column per system. Top: initial (a line per distinct initial
    bank) and learned (dots, one per run) centre frequency against band
    index. Bottom: each filter's centre shift in bands of the mel scale (see
    :func:`~speechbrain_relevance.analysis.movement.filter_movement`), so
    that "the filters hardly move" reads as dots near zero, and a frozen
    bank as dots exactly on it.

    Arguments
    ---------
    systems : dict
        Label -> list of :func:`~speechbrain_relevance.analysis.movement.
        filter_movement` results (one per run or fold).
    path : str, optional
        Where to save the figure.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    if not systems or not all(systems.values()):
        raise ValueError("plot_learned_vs_initial needs runs per system")
    n = len(systems)
    fig = _figure(figsize=(3.6 * n, 5.6), dpi=120)
    axes = fig.subplots(2, n, squeeze=False, sharex=True, sharey="row")
    for col, (label, runs) in enumerate(systems.items()):
        top, bottom = axes[0][col], axes[1][col]
        # A random initialisation differs between runs: a line for each
        # distinct initial bank (one for a mel initialisation).
        initials = {tuple(m["center_hz_initial"]) for m in runs}
        index = np.arange(len(runs[0]["center_hz_initial"]))
        for k, first in enumerate(sorted(initials)):
            top.plot(index, np.asarray(first) / 1000, color="C1",
                     linewidth=1.4 if len(initials) == 1 else 0.8,
                     label="initial" if k == 0 else None)
        for k, m in enumerate(runs):
            top.plot(
                index, np.asarray(m["center_hz"]) / 1000, ".", color="C0",
                markersize=2, alpha=0.5, label="learned" if k == 0 else None,
            )
            bottom.plot(
                index, m["center_shift_bands"], ".", color="C0",
                markersize=2, alpha=0.5,
            )
        bottom.axhline(0.0, color="C1", linewidth=1.0)
        shift = np.mean([m["mean_abs_center_shift_hz"] for m in runs])
        bands = np.mean([m["mean_abs_center_shift_bands"] for m in runs])
        top.set_title(f"{label}\n|shift| {shift:.0f} Hz, {bands:.2f} bands",
                      fontsize=9)
        bottom.set_xlabel("Band index")
        top.grid(alpha=0.3)
        bottom.grid(alpha=0.3)
    axes[0][0].set_ylabel("Centre frequency (kHz)")
    axes[1][0].set_ylabel("Centre shift (mel bands)")
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
