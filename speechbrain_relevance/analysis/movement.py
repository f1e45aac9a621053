"""How far a learnable filterbank's filters moved during training.

"Learnable front-ends that do not learn": a front-end whose filters stay
where they were initialised is a fixed filterbank with extra cost. These
functions compare a trained filterbank with its initial state (the same
configuration rebuilt, see :func:`speechbrain_relevance.analysis.
load_trained`), filter by filter in sorted order.

Authors
 * speechbrain-relevance developers
"""

import math

import torch


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
        report bandwidths), lists of float.

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
    return {"center_hz": centers, "bandwidth_hz": bandwidths}


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
        without bandwidths). Summary: ``mean_abs_center_shift_hz``,
        ``max_abs_center_shift_hz``, ``mean_abs_relative_center_shift``
        (``|shift| / initial centre``), ``mean_abs_log2_bandwidth_ratio``
        (octaves of bandwidth change; None without bandwidths).

    Example
    -------
    >>> before = {"center_hz": [100.0, 200.0], "bandwidth_hz": [50.0, 50.0]}
    >>> after = {"center_hz": [110.0, 180.0], "bandwidth_hz": [100.0, 25.0]}
    >>> m = filter_movement(before, after)
    >>> m["center_shift_hz"], m["mean_abs_center_shift_hz"]
    ([10.0, -20.0], 15.0)
    >>> m["mean_abs_log2_bandwidth_ratio"]
    1.0
    """
    a = initial if isinstance(initial, dict) else filter_summary(initial)
    b = trained if isinstance(trained, dict) else filter_summary(trained)
    if len(a["center_hz"]) != len(b["center_hz"]):
        raise ValueError(
            f"the filterbanks have {len(a['center_hz'])} and "
            f"{len(b['center_hz'])} filters"
        )
    shifts = [y - x for x, y in zip(a["center_hz"], b["center_hz"])]
    out = {
        "center_hz_initial": list(a["center_hz"]),
        "center_hz": list(b["center_hz"]),
        "center_shift_hz": shifts,
        "mean_abs_center_shift_hz": _mean([abs(s) for s in shifts]),
        "max_abs_center_shift_hz": max(abs(s) for s in shifts),
        "mean_abs_relative_center_shift": _mean(
            [abs(s) / x for s, x in zip(shifts, a["center_hz"])]
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
