"""Result and complexity tables across runs (the paper's Table 1 style).

* :func:`class_accuracy_table`: one row per run, one column per class
  (abbreviated), ``Avg`` (mean class-wise accuracy, the paper's Avg) and
  the overall accuracy, from the runs' ``test_results.json``.
* :func:`group_accuracy_table`: one row per run, one column per group
  (recording device in DCASE2020), plus the examples per group.
* :func:`count_parameters` / :func:`parameter_table`: parameters of the
  filterbank, of each relevance head and of the classifier, and what the
  front-end adds over the classifier (the paper's complexity analysis:
  80 Cos-Gauss parameters and 1,151 per relevance head).

Authors
 * speechbrain-relevance developers
"""

import json
import math
import os
import re


def load_results(folder, prefix="test_results"):
    """Read ``<folder>/<prefix>.json`` written by the recipes.

    Arguments
    ---------
    folder : str
        Recipe output folder (or a folder holding a copy of the results).
    prefix : str
        File name without extension.

    Returns
    -------
    dict or None
        The results, or None if the file does not exist.

    Example
    -------
    >>> load_results("/nonexistent") is None
    True
    """
    path = os.path.join(folder, f"{prefix}.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _fmt(value, percent=True):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.1f}" if percent else f"{value:.4f}"


def natural_key(text):
    """Sort key ordering ``s2`` before ``s10`` (and ``2`` before ``10``).

    Arguments
    ---------
    text : object
        A group or label name.

    Returns
    -------
    list
        Key for ``sorted``.

    Example
    -------
    >>> sorted(["s10", "b", "s2", "a"], key=natural_key)
    ['a', 'b', 's2', 's10']
    """
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", str(text))
        if part
    ]


def _union(lists, sort=False):
    seen = []
    for items in lists:
        for item in items:
            if item not in seen:
                seen.append(item)
    return sorted(seen, key=natural_key) if sort else seen


def class_accuracy_table(runs, abbreviations=None, percent=True):
    """Markdown table of class-wise accuracy, one row per run.

    Arguments
    ---------
    runs : sequence of tuple
        ``(name, results)`` pairs, ``results`` as in ``test_results.json``
        (``class_accuracy``, ``macro_accuracy``, ``accuracy``, ``n``).
    abbreviations : dict, optional
        Label -> column name, e.g. the runs' ``abbreviations``
        hyperparameter (the DCASE2020 yamls give the paper's scene
        abbreviations); labels without an entry keep their name.
    percent : bool
        Accuracies in % with one decimal, else fractions.

    Returns
    -------
    str
        Markdown table (classes in the first run's order, then any others).

    Example
    -------
    >>> res = {"class_accuracy": {"bus": 1.0, "tram": 0.5},
    ...        "macro_accuracy": 0.75, "accuracy": 0.8, "n": 5}
    >>> print(class_accuracy_table([("Mel", res)], {"bus": "BS"}))
    | Representation | BS | tram | Avg | Overall | N |
    |---|---:|---:|---:|---:|---:|
    | Mel | 100.0 | 50.0 | 75.0 | 80.0 | 5 |
    """
    if abbreviations is None:
        abbreviations = {}
    labels = _union(list(r["class_accuracy"]) for _, r in runs)
    cols = [abbreviations.get(lab, lab) for lab in labels]
    lines = [
        "| "
        + " | ".join(["Representation", *cols, "Avg", "Overall", "N"])
        + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(cols) + 3)) + "|",
    ]
    for name, res in runs:
        accs = res["class_accuracy"]
        cells = [_fmt(accs.get(lab), percent) for lab in labels]
        cells += [
            _fmt(res.get("macro_accuracy"), percent),
            _fmt(res.get("accuracy"), percent),
            str(res.get("n", "-")),
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def group_accuracy_table(runs, group_name="Device", percent=True):
    """Markdown table of accuracy per group (device), one row per run.

    Runs without ``group_accuracy`` are left out. A last row gives the
    examples per group (several counts, separated by ``/``, where the
    runs were tested on different data).

    Arguments
    ---------
    runs : sequence of tuple
        ``(name, results)`` pairs.
    group_name : str
        What the groups are (first column header).
    percent : bool
        Accuracies in % with one decimal, else fractions.

    Returns
    -------
    str or None
        Markdown table, or None if no run has per-group results.

    Example
    -------
    >>> res = {"group_accuracy": {"s10": {"accuracy": 0.5, "n": 2},
    ...                           "a": {"accuracy": 1.0, "n": 3}}}
    >>> print(group_accuracy_table([("Mel", res)]))
    | Device | a | s10 |
    |---|---:|---:|
    | Mel | 100.0 | 50.0 |
    | Examples | 3 | 2 |
    """
    runs = [(n, r) for n, r in runs if r.get("group_accuracy")]
    if not runs:
        return None
    groups = _union((r["group_accuracy"] for _, r in runs), sort=True)
    lines = [
        "| " + " | ".join([group_name, *groups]) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(groups)) + "|",
    ]
    for name, res in runs:
        acc = res["group_accuracy"]
        cells = [
            _fmt(acc[g]["accuracy"], percent) if g in acc else "-"
            for g in groups
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    counts = []
    for g in groups:
        ns = _union(
            [
                [r["group_accuracy"][g]["n"]]
                for _, r in runs
                if g in r["group_accuracy"]
            ]
        )
        counts.append("/".join(str(n) for n in ns))
    lines.append("| " + " | ".join(["Examples", *counts]) + " |")
    return "\n".join(lines)


def _count(module):
    if module is None:
        return 0, 0
    params = list(module.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return total, trainable


def count_parameters(compute_features, relevance=None, classifier=None):
    """Parameter counts of the complexity analysis.

    Arguments
    ---------
    compute_features : torch.nn.Module
        Front-end (the filterbank).
    relevance : torch.nn.Module, optional
        Relevance lobe; per-head counts if it has ``heads``.
    classifier : torch.nn.Module, optional
        Classifier.

    Returns
    -------
    dict
        ``filterbank``, ``relevance`` (None without one; else
        ``parameters``, ``trainable``, ``n_heads``, ``per_head``) and
        ``classifier`` entries with ``module``, ``parameters`` and
        ``trainable``; ``front_end`` (filterbank + relevance), ``total``
        and ``front_end_percent`` (front-end over classifier, in %).

    Example
    -------
    >>> from speechbrain_relevance.lobes import (
    ...     CosGaussFilterbank, MultiHeadRelevance)
    >>> rep = count_parameters(CosGaussFilterbank(n_filters=80),
    ...                        MultiHeadRelevance(n_bands=80, n_heads=2))
    >>> rep["filterbank"]["parameters"], rep["relevance"]["per_head"]
    (80, [1151, 1151])
    >>> rep["front_end"], rep["total"]
    (2382, 2382)
    """

    def entry(module):
        total, trainable = _count(module)
        return {
            "module": type(module).__name__,
            "parameters": total,
            "trainable": trainable,
        }

    report = {
        "filterbank": entry(compute_features),
        "relevance": None,
        "classifier": None,
    }
    if relevance is not None:
        report["relevance"] = entry(relevance)
        heads = getattr(relevance, "heads", None)
        if heads is not None:
            report["relevance"]["n_heads"] = len(heads)
            report["relevance"]["per_head"] = [_count(h)[0] for h in heads]
    if classifier is not None:
        report["classifier"] = entry(classifier)
    front = report["filterbank"]["parameters"] + (
        report["relevance"]["parameters"] if relevance is not None else 0
    )
    clf = report["classifier"]["parameters"] if classifier is not None else 0
    report["front_end"] = front
    report["total"] = front + clf
    report["front_end_percent"] = 100 * front / clf if clf else None
    return report


def parameter_table(reports):
    """Markdown table of parameter counts, one row per model.

    Arguments
    ---------
    reports : sequence of tuple
        ``(name, report)`` pairs from :func:`count_parameters`.

    Returns
    -------
    str
        Markdown table.

    Example
    -------
    >>> from speechbrain_relevance.lobes import CosGaussFilterbank
    >>> rep = count_parameters(CosGaussFilterbank(n_filters=80))
    >>> print(parameter_table([("Cos-Gauss", rep)]).splitlines()[-1])
    | Cos-Gauss | CosGaussFilterbank | 80 | - | 0 | - | 80 | - |
    """
    lines = [
        "| Model | Front-end | Filterbank | Relevance heads | Relevance "
        "total | Classifier | Total | Front-end / classifier (%) |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, rep in reports:
        rel = rep["relevance"]
        if rel is None:
            heads, rel_total = "-", "0"
        else:
            per_head = rel.get("per_head")
            if per_head and len(set(per_head)) == 1:
                heads = f"{len(per_head)} x {per_head[0]:,}"
            elif per_head:
                heads = " + ".join(f"{n:,}" for n in per_head)
            else:
                heads = "-"
            rel_total = f"{rel['parameters']:,}"
        clf = rep["classifier"]
        pct = rep["front_end_percent"]
        cells = [
            name,
            rep["filterbank"]["module"],
            f"{rep['filterbank']['parameters']:,}",
            heads,
            rel_total,
            f"{clf['parameters']:,}" if clf else "-",
            f"{rep['total']:,}",
            f"{pct:.3f}" if pct is not None else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
