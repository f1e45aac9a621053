r"""Statistics of the FSDD front-end study, as pure functions.

Runs are ``{seed: {speaker: accuracy}}`` mappings (seeds as strings or
ints). Every (seed, speaker) pair of two systems shares its data order
and initial weights, so the comparisons are paired.

Authors
 * speechbrain-relevance developers
"""

import math
import statistics


def only_seeds(runs, seeds):
    """Keep the runs of the given seeds.

    Example
    -------
    >>> only_seeds({"1": {"a": 0.5}, "2": {"a": 0.6}}, [2])
    {'2': {'a': 0.6}}
    """
    keep = {str(s) for s in seeds}
    return {s: f for s, f in (runs or {}).items() if str(s) in keep}


def run_mean(runs):
    """Mean accuracy over every (seed, fold) run, or None without runs.

    Example
    -------
    >>> run_mean({"1": {"a": 0.5, "b": None}, "2": {"a": 0.7}})
    0.6
    """
    accs = [float(a) for f in (runs or {}).values() for a in f.values()
            if a is not None]
    return statistics.fmean(accs) if accs else None


def seed_means(runs):
    """Each seed's mean over its folds (None for a seed missing a fold).

    Summed in fold order and divided, as the recipe's cross-validation
    aggregates a run: the same floats, so that a mean on a rounding edge
    rounds as the stored runs' always did.

    Example
    -------
    >>> seed_means({"1": {"a": 0.5, "b": 0.7}, "2": {"a": None}})
    [0.6, None]
    """
    return [None if not f or None in f.values()
            else sum(f.values()) / len(f) for f in runs.values()]


def mean_std(values):
    """Return the mean and sample std of values.

    The std is None for one value; both are None if any value is None.

    Example
    -------
    >>> mean_std([0.8, 0.9])[1] > 0, mean_std([0.8]), mean_std([0.8, None])
    (True, (0.8, None), (None, None))
    """
    if not values or None in values:
        return None, None
    std = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), std


def t_interval(values):
    """Mean, standard error, 95% t interval, wins and losses of values.

    Example
    -------
    >>> d = t_interval([0.02, -0.01, 0.05, 0.05, 0.05, -0.02])
    >>> round(d["mean"], 4), round(d["se"], 6), d["wins"], d["losses"]
    (0.0233, 0.013081, 4, 2)
    >>> t_interval([0.1]) is None
    True
    """
    from scipy.stats import t as student_t

    n = len(values)
    if n < 2:
        return None
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(n)
    half = float(student_t.ppf(0.975, n - 1)) * se
    return {"mean": mean, "se": se, "ci95": [mean - half, mean + half],
            "n": n, "wins": sum(d > 0 for d in values),
            "losses": sum(d < 0 for d in values)}


def _differences(target, baseline):
    """Per shared seed, target - baseline over the folds both have."""
    base = {str(k): v for k, v in (baseline or {}).items()}
    out = []
    for seed, folds in (target or {}).items():
        other = base.get(str(seed)) or {}
        diffs = [float(a) - float(other[f]) for f, a in (folds or {}).items()
                 if a is not None and other.get(f) is not None]
        if diffs:
            out.append(diffs)
    return out


def paired_difference(target, baseline):
    """Paired difference over every shared (seed, fold) run.

    Returns :func:`t_interval`'s dict (None with fewer than 2 pairs).

    Example
    -------
    >>> d = paired_difference(
    ...     {"1": {"a": 0.80, "b": 0.90}, "2": {"a": 0.70, "b": 0.95}},
    ...     {"1": {"a": 0.78, "b": 0.86}, "2": {"a": 0.71, "b": 0.90}})
    >>> round(d["mean"], 4), d["n"], [round(v, 4) for v in d["ci95"]]
    (0.025, 4, [-0.0171, 0.0671])
    """
    return t_interval([d for s in _differences(target, baseline) for d in s])


def paired_by_seed(target, baseline):
    """Paired difference with the seed as the unit.

    The folds of one seed start from the same initial weights, so they
    are not independent draws: each seed's mean difference is one value
    and the interval is over seeds.

    Example
    -------
    >>> d = paired_by_seed(
    ...     {"1": {"a": 0.80, "b": 0.90}, "2": {"a": 0.70, "b": 0.95},
    ...      "3": {"a": 0.75, "b": 0.85}},
    ...     {"1": {"a": 0.78, "b": 0.86}, "2": {"a": 0.71, "b": 0.90},
    ...      "3": {"a": 0.75, "b": 0.80}})
    >>> d["n"], [round(v, 4) for v in d["ci95"]]
    (3, [0.0126, 0.0374])
    """
    return t_interval([statistics.fmean(d)
                       for d in _differences(target, baseline)])


def _by_fold(runs):
    """Seed -> fold -> accuracy as fold -> the seeds' accuracies."""
    out = {}
    for folds in (runs or {}).values():
        for fold, acc in (folds or {}).items():
            if acc is not None:
                out.setdefault(fold, []).append(float(acc))
    return out


def seed_spread(runs):
    """Each fold's standard deviation over seeds (rounded to 4 places).

    Example
    -------
    >>> seed_spread({"1": {"a": 0.8, "b": 0.5}, "2": {"a": 0.9, "b": 0.5}})
    {'a': 0.0707, 'b': 0.0}
    """
    return {fold: round(statistics.stdev(v), 4)
            for fold, v in sorted(_by_fold(runs).items()) if len(v) > 1}


def pooled_seed_std(runs):
    """Pool the seed spread over folds, with a chi-square 95% interval.

    Each fold keeps its own mean; ``folds * (seeds - 1)`` degrees of
    freedom estimate the one spread a recipe has, which the largest of
    six per-fold spreads overstates.

    Example
    -------
    >>> s = pooled_seed_std({"1": {"a": 0.80, "b": 0.50},
    ...     "2": {"a": 0.90, "b": 0.52}, "3": {"a": 0.85, "b": 0.48}})
    >>> round(s["std"], 4), s["df"], [round(x, 4) for x in s["ci95"]]
    (0.0381, 4, [0.0228, 0.1094])
    """
    from scipy.stats import chi2

    squares, df = 0.0, 0
    for values in _by_fold(runs).values():
        if len(values) > 1:
            mean = statistics.fmean(values)
            squares += sum((v - mean) ** 2 for v in values)
            df += len(values) - 1
    if df == 0:
        return None
    return {"std": math.sqrt(squares / df), "df": df,
            "ci95": [math.sqrt(squares / float(chi2.ppf(0.975, df))),
                     math.sqrt(squares / float(chi2.ppf(0.025, df)))]}


def largest_spread_pass_rate(sigma, target=0.025, seeds=5, folds=6):
    """Chance that every fold's seed spread stays within a target.

    For a recipe whose true spread is ``sigma`` on every fold (normal
    accuracies, independent trainings): each sample variance is
    ``sigma**2 * chi2(seeds - 1) / (seeds - 1)``. With five seeds and six
    speakers a recipe exactly at the target passes one time in twenty.

    Example
    -------
    >>> round(largest_spread_pass_rate(0.025), 3)
    0.044
    """
    from scipy.stats import chi2

    df = seeds - 1
    return float(chi2.cdf(df * (target / sigma) ** 2, df)) ** folds


def tuned_pick(candidates):
    """Pick the candidate with the best validation accuracy on shared seeds.

    Compared over the seeds every candidate ran, so that none wins by
    luckier extra seeds; the first of equals is kept.

    ``candidates``: name -> validation runs, in order. None without any.

    Example
    -------
    >>> tuned_pick({"mel": {"1": {"a": 0.8}, "2": {"a": 0.9}},
    ...             "reg": {"1": {"a": 0.85}, "2": {"a": 0.88},
    ...                     "3": {"a": 0.5}}})
    'reg'
    """
    if not candidates:
        return None
    shared = set.intersection(*(set(v or {}) for v in candidates.values()))
    return max(candidates, key=lambda n: run_mean(
        only_seeds(candidates[n], shared)) or 0.0)


def confirmed(test, by_seed, done, planned):
    """Judge a registered comparison.

    None until every planned seed ran; then True only if both test
    intervals lie above zero.

    Example
    -------
    >>> up, down = {"ci95": [0.01, 0.02]}, {"ci95": [-0.01, 0.02]}
    >>> confirmed(up, up, [1, 2], [1, 2]), confirmed(up, down, [1, 2], [1, 2])
    (True, False)
    """
    if not set(done) >= set(planned) or not test or not by_seed:
        return None
    return test["ci95"][0] > 0 and by_seed["ci95"][0] > 0
