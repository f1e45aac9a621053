r"""Seed ensembles on FSDD: the spread of the mean of k models.

The stability target of the real-audio benchmark (the standard deviation
over seeds of each held-out speaker's accuracy) is missed by some
front-ends. Averaging the posteriors of ``k`` models trained with other
seeds is the textbook remedy, at ``k`` times the training cost. This
script measures it without training anything: it reads the finished runs
of :mod:`real_audio` (``<runs>/<system>/<seed>/fold_<speaker>``), has
every fold's tested checkpoint classify its test speaker's clips (the
recipe's pipeline and clip policy, one clip at a time, as the recipe's
test; each fold's accuracy is checked against its ``test_results.json``)
and forms the ensembles of ``k`` of the seeds.

For a speaker, the variance of a ``k``-seed ensemble's accuracy is
estimated without bias from pairs of *disjoint* ``k``-subsets of the
seeds, ``mean((acc(A) - acc(B)) ** 2) / 2`` (for ``k = 1`` the sample
variance over seeds); it needs at least ``2k`` seeds. Its square root is
reported per speaker (the largest) and pooled over the six speakers (the
root of the mean variance), beside the mean accuracy of a ``k``-ensemble
(over every ``k``-subset). The estimates for ``k > 1`` reuse the same
seeds in several pairs: they are point estimates without an interval.

Usage::

    python benchmarks/seed_ensemble.py --runs results/real_audio_v2 \
        --systems relevance_2head_epochs18 cosgauss_epochs18 [--k 2]

Posteriors are cached beside each fold (``test_posteriors.pt``).

Authors
 * speechbrain-relevance developers
"""

import argparse
import itertools
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import real_audio  # noqa: E402

ROOT = os.path.dirname(HERE)
DEFAULT_JSON = os.path.join(HERE, "results", "seed_ensemble.json")
POSTERIORS = "test_posteriors.pt"


def ensemble_variance(accuracy_of, seeds, k):
    """Unbiased variance of a ``k``-seed ensemble's accuracy.

    Arguments
    ---------
    accuracy_of : callable
        Maps a tuple of seeds (a ``k``-subset) to the ensemble's accuracy.
    seeds : sequence
        The seeds with runs.
    k : int
        Ensemble size.

    Returns
    -------
    float or None
        ``mean((acc(A) - acc(B)) ** 2) / 2`` over the unordered pairs of
        disjoint ``k``-subsets; None with fewer than ``2k`` seeds.

    Example
    -------
    >>> acc = {(1,): 0.8, (2,): 0.9, (3,): 0.7}
    >>> round(ensemble_variance(lambda s: acc[s], [1, 2, 3], 1), 6)
    0.01
    >>> ensemble_variance(lambda s: 0.0, [1, 2, 3], 2) is None
    True

    Four seeds, pairs: ((1, 2), (3, 4)), ((1, 3), (2, 4)), ((1, 4), (2, 3));
    with the ensemble's accuracy the mean of its models' (0.8, 0.9, 0.7,
    0.6) the squared differences are 0.04, 0 and 0.01:

    >>> v = {1: 0.8, 2: 0.9, 3: 0.7, 4: 0.6}
    >>> mean_of = lambda s: sum(v[i] for i in s) / len(s)
    >>> round(ensemble_variance(mean_of, [1, 2, 3, 4], 2), 6)
    0.008333
    """
    pairs = [
        (a, b)
        for a, b in itertools.combinations(
            itertools.combinations(sorted(seeds), k), 2
        )
        if not set(a) & set(b)
    ]
    if not pairs:
        return None
    return sum(
        (accuracy_of(a) - accuracy_of(b)) ** 2 for a, b in pairs
    ) / (2 * len(pairs))


def ensemble_accuracy(probs, labels):
    """Accuracy of the mean of several models' posteriors.

    Arguments
    ---------
    probs : list of torch.Tensor
        ``[clips, classes]`` posteriors, one per model.
    labels : torch.Tensor
        ``[clips]`` class indices.

    Returns
    -------
    float
        The fraction of clips whose mean posterior's argmax is the label.

    Example
    -------
    >>> a = torch.tensor([[0.9, 0.1], [0.4, 0.6]])
    >>> b = torch.tensor([[0.2, 0.8], [0.1, 0.9]])
    >>> ensemble_accuracy([a], torch.tensor([0, 0]))
    0.5
    >>> ensemble_accuracy([a, b], torch.tensor([0, 1]))
    1.0
    """
    mean = torch.stack(probs).mean(dim=0)
    return float((mean.argmax(dim=1) == labels).double().mean())


def fold_posteriors(fold_folder):
    """Posteriors and labels of a finished fold's test clips (cached).

    Arguments
    ---------
    fold_folder : str
        ``<runs>/<system>/<seed>/fold_<speaker>``.

    Returns
    -------
    dict
        ``ids`` (sorted), ``probs`` ``[clips, classes]``, ``labels``.
    """
    cache = os.path.join(fold_folder, POSTERIORS)
    if os.path.isfile(cache):
        return torch.load(cache, weights_only=True)
    from speechbrain_relevance.cli import load_hparams
    from speechbrain_relevance.pipeline import clip_policy_of

    hparams = load_hparams(os.path.join(fold_folder, "hyperparams.yaml"))
    hparams["checkpointer"].recover_if_possible()
    pipeline = hparams["pipeline"].eval()
    policy = clip_policy_of(hparams)
    with open(os.path.join(fold_folder, "manifests", "test.json")) as f:
        manifest = json.load(f)
    ids = sorted(manifest)
    labels = torch.tensor(
        [hparams["labels"].index(str(manifest[i]["digit"])) for i in ids]
    )
    with torch.no_grad():
        probs = torch.cat([
            pipeline(policy.load(manifest[i]["wav"], strict=True)[None])
            .exp()
            for i in ids
        ])
    with open(os.path.join(fold_folder, "test_results.json")) as f:
        reported = json.load(f)["accuracy"]
    mine = ensemble_accuracy([probs], labels)
    if abs(mine - reported) > 1e-9:
        raise RuntimeError(
            f"{fold_folder}: the checkpoint classifies {mine:.4f} of the "
            f"test clips right, test_results.json says {reported:.4f}"
        )
    out = {"ids": ids, "probs": probs, "labels": labels}
    torch.save(out, cache)
    return out


def analyse(system_folder, max_k=2):
    """Ensemble statistics of one system's runs.

    Returns
    -------
    dict
        ``seeds`` and, per ``k`` (as a string), ``mean`` accuracy, per
        speaker ``std`` and the ``pooled_std`` (fractions).
    """
    # The real-audio benchmark's notion of a finished run (its
    # cross-validation aggregated every fold).
    runs, name = os.path.split(os.path.normpath(system_folder))
    seeds = real_audio.finished_seeds(runs, name)
    folds = sorted(
        f for f in os.listdir(os.path.join(system_folder, str(seeds[0])))
        if f.startswith("fold_")
    ) if seeds else []
    posts = {
        (seed, fold): fold_posteriors(
            os.path.join(system_folder, str(seed), fold)
        )
        for seed in seeds
        for fold in folds
    }
    out = {"seeds": seeds, "ensembles": {}}
    for k in range(1, max_k + 1):
        if len(seeds) < 2 * k:
            break
        std, means = {}, []
        for fold in folds:
            labels = posts[(seeds[0], fold)]["labels"]
            cache = {}

            def acc(subset, fold=fold, labels=labels, cache=cache):
                if subset not in cache:
                    cache[subset] = ensemble_accuracy(
                        [posts[(s, fold)]["probs"] for s in subset], labels
                    )
                return cache[subset]

            var = ensemble_variance(acc, seeds, k)
            std[fold[len("fold_"):]] = math.sqrt(var)
            subsets = list(itertools.combinations(seeds, k))
            means.append(sum(acc(s) for s in subsets) / len(subsets))
        out["ensembles"][str(k)] = {
            "mean": sum(means) / len(means),
            "std": std,
            "max_std": max(std.values()),
            "pooled_std": math.sqrt(
                sum(v * v for v in std.values()) / len(std)
            ),
        }
    return out


def table(results):
    """Markdown: one row per (system, k)."""
    lines = [
        "| system | models averaged (k) | seeds | test acc. (%) | largest "
        "test speaker's std (points) | pooled over speakers (points) | "
        "training cost |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res in results.items():
        for k, e in res["ensembles"].items():
            lines.append(
                f"| `{name}` | {k} | {len(res['seeds'])} | "
                f"{100 * e['mean']:.1f} | {100 * e['max_std']:.1f} | "
                f"{100 * e['pooled_std']:.1f} | {k}x |"
            )
    return "\n".join(lines)


def main(argv=None):
    """Analyse the runs; print the table; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", required=True)
    parser.add_argument("--systems", nargs="+", required=True)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--json", default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    if os.path.isfile(args.json):
        with open(args.json) as f:
            results = json.load(f)
    for name in args.systems:
        folder = os.path.join(args.runs, name)
        if not os.path.isdir(folder):
            sys.exit(f"error: no runs of {name} in {args.runs}")
        results[name] = analyse(folder, args.k)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print(table(results))
    return results


if __name__ == "__main__":
    main()
