"""Classification report: accuracy, log loss, class-wise and per-device.

:class:`ClassificationReport` accumulates batch outputs during evaluation
and summarises them like the paper's Table 1 (class-wise accuracy with an
average column), plus overall accuracy, multi-class log loss, accuracy per
group (e.g. recording device) and the confusion matrix. Under DDP each
process sees part of the data: call :meth:`ClassificationReport.gather`
on every process, then :meth:`ClassificationReport.write` (which writes
on the main process only).

Authors
 * speechbrain-relevance developers
"""

import json
import math
import os

import numpy as np
import torch
from speechbrain.utils.distributed import (
    if_main_process,
    is_distributed_initialized,
)


def _to_list(values):
    """Tensor, array or sequence -> list of python scalars / objects."""
    if values is None:
        return None
    if torch.is_tensor(values):
        return values.detach().cpu().tolist()
    if isinstance(values, np.ndarray):
        return values.tolist()
    return list(values)


class ClassificationReport:
    """Accumulate predictions and compute classification statistics.

    Arguments
    ---------
    labels : sequence of str, optional
        Class names, indexed by the integer targets. Defaults to
        ``"0", "1", ...`` for as many classes as the outputs have.
    abbreviations : dict, optional
        Label -> column name for the markdown table (a recipe's
        ``abbreviations`` hyperparameter); labels without an entry keep
        their name.
    inputs : str
        What :meth:`append` receives: ``"logits"`` (or log-probabilities:
        a softmax is applied, which leaves log-probabilities unchanged) or
        ``"probs"`` (used as they are).
    eps : float
        Probabilities are clipped to ``[eps, 1 - eps]`` for the log loss.

    Example
    -------
    >>> report = ClassificationReport(labels=["bus", "park"])
    >>> report.append(
    ...     ["x1", "x2", "x3"],
    ...     torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]),
    ...     torch.tensor([0, 1, 1]),
    ...     groups=["a", "a", "b"],
    ... )
    >>> s = report.summarize()
    >>> round(s["accuracy"], 4), s["class_accuracy"]
    (0.6667, {'bus': 1.0, 'park': 0.5})
    >>> s["group_accuracy"]["b"]
    {'accuracy': 0.0, 'n': 1}
    >>> s["confusion_matrix"]
    [[1, 0], [1, 1]]
    """

    def __init__(
        self, labels=None, abbreviations=None, inputs="logits", eps=1e-15,
        group_by=None,
    ):
        if inputs not in ("logits", "probs"):
            raise ValueError(
                f"inputs must be 'logits' or 'probs', got {inputs!r}"
            )
        self.labels = list(labels) if labels is not None else None
        self.abbreviations = dict(abbreviations or {})
        self.inputs = inputs
        self.eps = eps
        self.group_by = group_by
        self.clear()

    def clear(self):
        """Forget everything accumulated so far."""
        self.ids = []
        self.probs = []
        self.targets = []
        self.groups = []

    def __len__(self):
        return len(self.ids)

    def append(self, ids, predictions, targets, groups=None):
        """Add a batch.

        Arguments
        ---------
        ids : sequence
            Example ids (used to remove the duplicates that a distributed
            sampler adds, see :meth:`gather`).
        predictions : torch.Tensor
            ``[batch, n_classes]`` logits or probabilities (see ``inputs``).
        targets : torch.Tensor or sequence of int
            ``[batch]`` class indices.
        groups : sequence, optional
            ``[batch]`` group labels (e.g. device); None for no groups.
        """
        predictions = torch.as_tensor(predictions).detach()
        if predictions.dim() != 2:
            raise ValueError(
                "predictions must be [batch, n_classes], got shape "
                f"{tuple(predictions.shape)}"
            )
        if self.inputs == "logits":
            predictions = torch.softmax(predictions.double(), dim=-1)
        probs = predictions.double().cpu().numpy()
        ids, targets = _to_list(ids), _to_list(targets)
        groups = _to_list(groups)
        if groups is None:
            groups = [None] * len(ids)
        if not len(ids) == len(targets) == len(groups) == probs.shape[0]:
            raise ValueError(
                f"batch sizes differ: {len(ids)} ids, {len(targets)} "
                f"targets, {len(groups)} groups, {probs.shape[0]} predictions"
            )
        if self.probs and self.probs[0].shape[1] != probs.shape[1]:
            raise ValueError(
                f"got {probs.shape[1]} classes, earlier batches had "
                f"{self.probs[0].shape[1]}"
            )
        self.ids.extend(ids)
        self.probs.append(probs)
        self.targets.extend(int(t) for t in targets)
        self.groups.extend(groups)

    def gather(self):
        """Collect the results of all processes (DDP), on every process.

        A collective operation: every process must call it (not inside
        ``run_on_main``). Uses ``torch.distributed.all_gather_object``; a
        no-op unless the process group is initialised. Afterwards each
        process holds all results, in rank order, with repeated ids
        (added by ``DistributedSampler`` to even out the shards) kept
        only once.
        """
        if not is_distributed_initialized():
            return
        local = (self.ids, self._prob_matrix(), self.targets, self.groups)
        world = torch.distributed.get_world_size()
        shards = [None] * world
        torch.distributed.all_gather_object(shards, local)
        self.clear()
        seen = set()
        for ids, probs, targets, groups in shards:
            keep = []
            for i, example_id in enumerate(ids):
                if example_id in seen:
                    continue
                seen.add(example_id)
                keep.append(i)
            if not keep:  # e.g. a rank without data
                continue
            self.ids.extend(ids[i] for i in keep)
            self.probs.append(probs[keep])
            self.targets.extend(targets[i] for i in keep)
            self.groups.extend(groups[i] for i in keep)

    def _prob_matrix(self):
        """All probabilities as one ``[n, n_classes]`` array."""
        if not self.probs:
            return np.zeros((0, len(self.labels or [])))
        return np.concatenate(self.probs, axis=0)

    def _label_names(self, n_classes):
        if self.labels is None:
            return [str(i) for i in range(n_classes)]
        if len(self.labels) != n_classes:
            raise ValueError(
                f"{len(self.labels)} labels for {n_classes} output classes"
            )
        return self.labels

    def summarize(self):
        """Compute the statistics.

        Returns
        -------
        dict
            ``n``; ``accuracy`` (overall, micro); ``macro_accuracy`` (mean
            of the class-wise accuracies, Table 1's "Avg"); ``log_loss``
            (mean of ``-log p[target]``, clipped); ``class_accuracy``
            (label -> accuracy, NaN for a class without examples);
            ``class_counts``; ``group_accuracy`` (group -> ``{"accuracy",
            "n"}``, only when groups were given); ``confusion_matrix``
            (rows: true class, columns: predicted class); ``labels``.
        """
        probs = self._prob_matrix()
        n, n_classes = probs.shape
        if n == 0:
            raise ValueError("ClassificationReport is empty")
        labels = self._label_names(n_classes)
        targets = np.asarray(self.targets, dtype=np.int64)
        if targets.min() < 0 or targets.max() >= n_classes:
            raise ValueError(f"targets out of range [0, {n_classes})")
        preds = probs.argmax(axis=1)
        correct = preds == targets

        confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
        np.add.at(confusion, (targets, preds), 1)
        counts = confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            class_acc = np.diag(confusion) / counts
        present = counts > 0

        p_true = np.clip(probs[np.arange(n), targets], self.eps, 1 - self.eps)
        summary = {
            "n": int(n),
            "accuracy": float(correct.mean()),
            "macro_accuracy": float(class_acc[present].mean()),
            "log_loss": float(-np.log(p_true).mean()),
            "class_accuracy": {
                lab: float(a) if ok else math.nan
                for lab, a, ok in zip(labels, class_acc, present)
            },
            "class_counts": {lab: int(c) for lab, c in zip(labels, counts)},
            "confusion_matrix": confusion.tolist(),
            "labels": list(labels),
        }
        if any(g is not None for g in self.groups):
            by_group = {}
            for g, ok in zip(self.groups, correct):
                hits, total = by_group.get(g, (0, 0))
                by_group[g] = (hits + int(ok), total + 1)
            summary["group_accuracy"] = {
                g: {"accuracy": hits / total, "n": total}
                for g, (hits, total) in sorted(
                    by_group.items(), key=lambda kv: str(kv[0])
                )
            }
            if self.group_by:
                summary["group_by"] = self.group_by
        return summary

    def to_dict(self):
        """Return the summary in a JSON-friendly form (NaN -> None).

        Returns
        -------
        dict
            See :meth:`summarize`; group keys are strings.
        """

        def clean(value):
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, dict):
                return {str(k): clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return clean(self.summarize())

    def to_markdown(self, name="System", percent=True):
        """Render the results as markdown (class-wise table first).

        The first table has the layout of the paper's Table 1: one row
        (``name``), one column per class (abbreviated) and ``Avg``, the
        mean of the class-wise accuracies. Overall accuracy, log loss and,
        when available, per-group accuracy and the confusion matrix
        follow.

        Arguments
        ---------
        name : str
            Row label (e.g. the representation).
        percent : bool
            Accuracies in % with one decimal, else fractions.

        Returns
        -------
        str
            Markdown text.

        Example
        -------
        >>> report = ClassificationReport(
        ...     ["bus", "tram"], abbreviations={"bus": "BS", "tram": "TM"}
        ... )
        >>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
        >>> report.append([1, 2], probs.log(), [0, 1])
        >>> for line in report.to_markdown("Mel").splitlines()[2:5]:
        ...     print(line)
        | Representation | BS | TM | Avg |
        |---|---:|---:|---:|
        | Mel | 100.0 | 0.0 | 50.0 |
        """
        s = self.summarize()
        cols = [self.abbreviations.get(lab, lab) for lab in s["labels"]]

        def fmt(v):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "-"
            return f"{100 * v:.1f}" if percent else f"{v:.4f}"

        unit = " (%)" if percent else ""
        lines = [
            f"Class-wise accuracy{unit}",
            "",
            "| " + " | ".join(["Representation", *cols, "Avg"]) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(cols) + 1)) + "|",
            "| "
            + " | ".join(
                [name]
                + [fmt(s["class_accuracy"][lab]) for lab in s["labels"]]
                + [fmt(s["macro_accuracy"])]
            )
            + " |",
            "",
            f"- Examples: {s['n']}",
            f"- Accuracy{unit}: {fmt(s['accuracy'])}",
            f"- Log loss: {s['log_loss']:.4f}",
        ]
        if "group_accuracy" in s:
            lines += [
                "",
                f"Accuracy per {s.get('group_by', 'group')}{unit}",
                "",
                "| Group | N | Accuracy |",
                "|---|---:|---:|",
            ]
            lines += [
                f"| {g} | {v['n']} | {fmt(v['accuracy'])} |"
                for g, v in s["group_accuracy"].items()
            ]
        lines += [""] + confusion_markdown(
            cols,
            s["confusion_matrix"],
            "Confusion matrix (rows: true, columns: predicted)",
        )
        return "\n".join(lines) + "\n"

    def write(self, folder, prefix="results", name="System"):
        """Write ``<prefix>.md`` and ``<prefix>.json`` into ``folder``.

        Only the main process writes (call :meth:`gather` first under
        DDP); other processes return None.

        Arguments
        ---------
        folder : str or os.PathLike
            Output folder (created if missing).
        prefix : str
            File name without extension.
        name : str
            Row label of the markdown table.

        Returns
        -------
        tuple of str or None
            Paths of the markdown and JSON files.

        Example
        -------
        >>> import tempfile
        >>> report = ClassificationReport(labels=["bus", "tram"])
        >>> report.append(["a"], torch.tensor([[0.0, 1.0]]), [1])
        >>> report.gather()  # no-op outside DDP
        >>> md, js = report.write(tempfile.mkdtemp(), "test_results")
        >>> os.path.basename(md), os.path.basename(js)
        ('test_results.md', 'test_results.json')
        """
        if not if_main_process():
            return None
        os.makedirs(folder, exist_ok=True)
        md_path = os.path.join(folder, f"{prefix}.md")
        json_path = os.path.join(folder, f"{prefix}.json")
        with open(md_path, "w", encoding="utf-8") as f:
            f.write(self.to_markdown(name=name))
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")
        return md_path, json_path


def confusion_markdown(columns, matrix, title):
    """Return the markdown lines of a titled confusion matrix.

    Arguments
    ---------
    columns : sequence of str
        Class names (rows and columns).
    matrix : sequence of sequence of int
        Counts, rows true, columns predicted.
    title : str
        Line above the table.

    Returns
    -------
    list of str
        The lines.

    Example
    -------
    >>> for line in confusion_markdown(["a", "b"], [[2, 0], [1, 3]], "CM"):
    ...     print(line)
    CM
    <BLANKLINE>
    | | a | b |
    |---|---:|---:|
    | a | 2 | 0 |
    | b | 1 | 3 |
    """
    lines = [
        title,
        "",
        "| | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    lines += [
        f"| {c} | " + " | ".join(str(v) for v in row) + " |"
        for c, row in zip(columns, matrix)
    ]
    return lines
