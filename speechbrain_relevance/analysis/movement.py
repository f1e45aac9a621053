"""How far a learnable filterbank's filters moved during training.

"Learnable front-ends that do not learn": a front-end whose filters stay
where they were initialised is a fixed filterbank with extra cost. These
functions compare a trained filterbank with its initial state (the same
configuration rebuilt, see :func:`speechbrain_relevance.analysis.
load_trained`), filter by filter in sorted order, as the critique
measures it: centre shifts in Hz, in mel and ERB-rate units and in
bands of the initial bank on the mel scale, bandwidth changes, and
a distance between each filter's initial and learned frequency response.

Authors
 * speechbrain-relevance developers
"""

import math

import torch


def mel_scale(hz):
    """HTK mel of frequencies in Hz (the scale of the mel initialisation).

    Example
    -------
    >>> round(mel_scale(1000.0), 1)
    1000.0
    """
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def erb_rate(hz):
    """ERB-rate (number of equivalent rectangular bandwidths below ``hz``).

    Glasberg and Moore (1990): ``21.4 log10(1 + 0.00437 f)``.

    Example
    -------
    >>> round(erb_rate(1000.0), 2)
    15.62
    """
    return 21.4 * math.log10(1.0 + 0.00437 * hz)


def band_spacing(centers, scale=mel_scale):
    """Width of one band of a bank, on a perceptual scale.

    The bank's range on ``scale`` (lowest to highest centre) over its
    number of gaps: the band of a bank of as many filters spread evenly
    on the scale over the same range, so that a shift of 1 in these units
    moves a filter by one band. For a mel-initialised bank on the mel
    scale this is each filter's distance to its neighbours; unlike that
    distance it stays a band wide for a random initialisation, whose
    neighbours may nearly coincide (and would make any shift look huge).

    Arguments
    ---------
    centers : list of float
        Sorted centre frequencies in Hz (at least two, not all equal).
    scale : callable
        Hz -> perceptual units (:func:`mel_scale` or :func:`erb_rate`).

    Returns
    -------
    float
        The width, in the scale's units.

    Example
    -------
    >>> band_spacing([0.0, 100.0, 300.0], scale=lambda hz: hz)
    150.0
    >>> band_spacing([100.0, 100.0])
    Traceback (most recent call last):
    ...
    ValueError: band_spacing needs two distinct centres: [100.0, 100.0]
    """
    s = [scale(c) for c in centers]
    if len(s) < 2 or s[-1] <= s[0]:
        raise ValueError(
            f"band_spacing needs two distinct centres: {list(centers)}"
        )
    return (s[-1] - s[0]) / (len(s) - 1)


def magnitude_responses(filterbank, n_fft=None):
    """Magnitude responses ``|rfft(kernel)|`` of a filterbank's filters.

    Arguments
    ---------
    filterbank : torch.nn.Module
        A filterbank with ``kernels()`` (``[n_filters, taps]``, sorted).
    n_fft : int, optional
        FFT size (default: the next power of two of 4 kernel lengths).

    Returns
    -------
    torch.Tensor
        ``[n_filters, n_fft // 2 + 1]`` magnitudes (float64).

    Example
    -------
    >>> from speechbrain_relevance.lobes import CosGaussFilterbank
    >>> fb = CosGaussFilterbank(n_filters=4, sample_rate=8000,
    ...                         win_length=200, hop_length=80,
    ...                         kernel_size=129)
    >>> magnitude_responses(fb).shape
    torch.Size([4, 513])
    """
    with torch.no_grad():
        kernels = filterbank.kernels().detach().double().cpu()
    if n_fft is None:
        n_fft = 1 << math.ceil(math.log2(4 * kernels.shape[-1]))
    return torch.fft.rfft(kernels, n=n_fft).abs()


def response_distance(initial, trained):
    """Per filter, ``1 - cosine similarity`` of two magnitude responses.

    0 for the same response shape (gain aside), 1 for responses with no
    overlap: how far a filter's passband moved, whatever its
    parameterisation.

    Arguments
    ---------
    initial : torch.Tensor
        ``[n_filters, n_bins]`` magnitude responses before training.
    trained : torch.Tensor
        The same after training (same FFT size).

    Returns
    -------
    list of float
        One distance per filter.

    Example
    -------
    >>> a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    >>> b = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    >>> response_distance(a, b)
    [1.0, 0.0]
    """
    a = initial.double()
    b = trained.double()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(
        1e-300
    )
    return [round(float(1.0 - c), 12) for c in cos]


def filter_summary(filterbank):
    """Return the centre frequencies and bandwidths of a filterbank.

    Arguments
    ---------
    filterbank : torch.nn.Module
        A learnable filterbank with ``center_frequencies()`` (Hz, sorted)
        and, optionally, ``bandwidths_hz()`` (Hz, same order).

    Returns
    -------
    dict
        ``center_hz`` and ``bandwidth_hz`` (None if the filterbank does not
        report bandwidths), lists of float; ``response``: the
        :func:`magnitude_responses` (None without ``kernels()``).

    Example
    -------
    >>> from speechbrain_relevance.lobes import CosGaussFilterbank
    >>> fb = CosGaussFilterbank(n_filters=4, sample_rate=8000,
    ...                         win_length=200, hop_length=80,
    ...                         kernel_size=129)
    >>> s = filter_summary(fb)
    >>> len(s["center_hz"]), len(s["bandwidth_hz"])
    (4, 4)
    """
    with torch.no_grad():
        centers = filterbank.center_frequencies().double().cpu().tolist()
        bandwidths = None
        if hasattr(filterbank, "bandwidths_hz"):
            bandwidths = filterbank.bandwidths_hz().double().cpu().tolist()
    response = None
    if callable(getattr(filterbank, "kernels", None)):
        response = magnitude_responses(filterbank)
    return {
        "center_hz": centers, "bandwidth_hz": bandwidths, "response": response
    }


def filter_movement(initial, trained):
    """Compare a trained filterbank with its initial state.

    Filters are compared in sorted order (band ``k`` of each), as the
    filterbanks output them.

    Arguments
    ---------
    initial : torch.nn.Module or dict
        The filterbank before training, or its :func:`filter_summary`.
    trained : torch.nn.Module or dict
        The filterbank after training, or its :func:`filter_summary`.

    Returns
    -------
    dict
        Per filter: ``center_hz_initial``, ``center_hz``,
        ``center_shift_hz`` (trained - initial), ``bandwidth_hz_initial``,
        ``bandwidth_hz``, ``bandwidth_ratio`` (trained / initial; None
        without bandwidths), ``center_shift_bands`` (the shift on the mel
        scale divided by the initial bank's mel band width, see
        :func:`band_spacing`), ``response_distance`` (see
        :func:`response_distance`; None without responses). Summary:
        ``mean_abs_center_shift_hz``, ``max_abs_center_shift_hz``,
        ``mean_abs_relative_center_shift`` (``|shift| / initial centre``),
        ``mean_abs_center_shift_mel``, ``mean_abs_center_shift_erb``
        (ERB-rate units), ``mean_abs_center_shift_bands``,
        ``max_abs_center_shift_bands``, ``mean_abs_log2_bandwidth_ratio``
        (octaves of bandwidth change; None without bandwidths),
        ``mean_response_distance`` (None without responses).

    Example
    -------
    >>> before = {"center_hz": [100.0, 200.0], "bandwidth_hz": [50.0, 50.0]}
    >>> after = {"center_hz": [110.0, 180.0], "bandwidth_hz": [100.0, 25.0]}
    >>> m = filter_movement(before, after)
    >>> m["center_shift_hz"], m["mean_abs_center_shift_hz"]
    ([10.0, -20.0], 15.0)
    >>> m["mean_abs_log2_bandwidth_ratio"]
    1.0

    Relative to the bands: a shift of 100 mel where the bands are 200 mel
    wide is half a band.

    >>> hz = [700.0 * (10 ** (m / 2595.0) - 1) for m in (200, 400, 600)]
    >>> moved = [hz[0], 700.0 * (10 ** (500 / 2595.0) - 1), hz[2]]
    >>> m = filter_movement({"center_hz": hz}, {"center_hz": moved})
    >>> [round(b, 6) for b in m["center_shift_bands"]]
    [0.0, 0.5, 0.0]
    """
    a = initial if isinstance(initial, dict) else filter_summary(initial)
    b = trained if isinstance(trained, dict) else filter_summary(trained)
    if len(a["center_hz"]) != len(b["center_hz"]):
        raise ValueError(
            f"the filterbanks have {len(a['center_hz'])} and "
            f"{len(b['center_hz'])} filters"
        )
    shifts = [y - x for x, y in zip(a["center_hz"], b["center_hz"])]
    mel_shifts = [
        mel_scale(y) - mel_scale(x)
        for x, y in zip(a["center_hz"], b["center_hz"])
    ]
    erb_shifts = [
        erb_rate(y) - erb_rate(x)
        for x, y in zip(a["center_hz"], b["center_hz"])
    ]
    bands = [0.0] * len(shifts)
    if len(shifts) > 1:
        width = band_spacing(a["center_hz"])
        bands = [s / width for s in mel_shifts]
    distance = None
    if a.get("response") is not None and b.get("response") is not None:
        distance = response_distance(a["response"], b["response"])
    out = {
        "center_hz_initial": list(a["center_hz"]),
        "center_hz": list(b["center_hz"]),
        "center_shift_hz": shifts,
        "mean_abs_center_shift_hz": _mean([abs(s) for s in shifts]),
        "max_abs_center_shift_hz": max(abs(s) for s in shifts),
        "mean_abs_relative_center_shift": _mean(
            [abs(s) / x for s, x in zip(shifts, a["center_hz"])]
        ),
        "mean_abs_center_shift_mel": _mean([abs(s) for s in mel_shifts]),
        "mean_abs_center_shift_erb": _mean([abs(s) for s in erb_shifts]),
        "center_shift_bands": bands,
        "mean_abs_center_shift_bands": _mean([abs(s) for s in bands]),
        "max_abs_center_shift_bands": max(abs(s) for s in bands),
        "response_distance": distance,
        "mean_response_distance": (
            None if distance is None else _mean(distance)
        ),
        "bandwidth_hz_initial": a.get("bandwidth_hz"),
        "bandwidth_hz": b.get("bandwidth_hz"),
        "bandwidth_ratio": None,
        "mean_abs_log2_bandwidth_ratio": None,
    }
    if a.get("bandwidth_hz") is not None and b.get("bandwidth_hz") is not None:
        ratios = [y / x for x, y in zip(a["bandwidth_hz"], b["bandwidth_hz"])]
        out["bandwidth_ratio"] = ratios
        out["mean_abs_log2_bandwidth_ratio"] = _mean(
            [abs(math.log2(r)) for r in ratios]
        )
    return out


def movement_markdown(movement, every=1):
    """Render a movement report as a markdown table.

    Arguments
    ---------
    movement : dict
        From :func:`filter_movement`.
    every : int
        Show every ``every``-th filter.

    Returns
    -------
    str
        Summary lines and a table, one row per shown filter.

    Example
    -------
    >>> m = filter_movement({"center_hz": [100.0], "bandwidth_hz": None},
    ...                     {"center_hz": [150.0], "bandwidth_hz": None})
    >>> print(movement_markdown(m).splitlines()[0])
    - Mean |centre shift|: 50.0 Hz (max 50.0 Hz, mean relative 50.0%)
    """
    lines = [
        f"- Mean |centre shift|: {movement['mean_abs_center_shift_hz']:.1f} "
        f"Hz (max {movement['max_abs_center_shift_hz']:.1f} Hz, mean "
        f"relative {100 * movement['mean_abs_relative_center_shift']:.1f}%)"
    ]
    has_bw = movement["bandwidth_ratio"] is not None
    if has_bw:
        lines.append(
            "- Mean |bandwidth change|: "
            f"{movement['mean_abs_log2_bandwidth_ratio']:.3f} octaves"
        )
    header = "| filter | centre init (Hz) | centre (Hz) | shift (Hz) |"
    rule = "|---:|---:|---:|---:|"
    if has_bw:
        header += " bandwidth init (Hz) | bandwidth (Hz) | ratio |"
        rule += "---:|---:|---:|"
    lines += ["", header, rule]
    for k in range(0, len(movement["center_hz"]), max(1, int(every))):
        row = (
            f"| {k} | {movement['center_hz_initial'][k]:.1f} | "
            f"{movement['center_hz'][k]:.1f} | "
            f"{movement['center_shift_hz'][k]:+.1f} |"
        )
        if has_bw:
            row += (
                f" {movement['bandwidth_hz_initial'][k]:.1f} | "
                f"{movement['bandwidth_hz'][k]:.1f} | "
                f"{movement['bandwidth_ratio'][k]:.2f} |"
            )
        lines.append(row)
    return "\n".join(lines) + "\n"


def _mean(values):
    return sum(values) / len(values) if values else math.nan
