r"""The FSDD front-end study: run it, store its runs, report it.

Every system of ``experiments.yaml`` runs the FSDD recipe's six-fold
leave-one-speaker-out cross-validation per seed: one ``train.py``
subprocess per fold (one CPU thread), ``--jobs`` (system, seed) runs at a
time. ``results/runs.json`` keeps only raw results per (system, seed,
fold); ``report`` derives the rest (:mod:`study_report`). The commands
are in README.md; ``python study.py --help`` lists them.

Authors
 * speechbrain-relevance developers
"""

import argparse
import contextlib
import fcntl
import fnmatch
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import study_report  # noqa: E402

ROOT = study_report.ROOT
EXPERIMENTS = os.path.join(HERE, "experiments.yaml")
STORE = os.path.join(HERE, "results", "runs.json")
ANALYSIS = os.path.join(HERE, "results", "analysis.json")
#: Per-seed raw fields of a store entry (seed -> value).
PER_SEED = ("fold_accuracies", "fold_valid_accuracies", "filter_movement",
            "cpu_minutes_per_run", "minutes_per_run")
#: What must agree for two entries to be runs of the same system.
DEFINITION = ("hparams", "overrides", "classifier_size")
#: Written into each fold folder: its training's wall and CPU seconds.
TIMING = "study_timing.json"
#: The filter movement summaries stored per fold, and per seed their
#: means over its folds (the first four: all that older runs stored).
MOVEMENT = ("mean_abs_center_shift_hz", "max_abs_center_shift_hz",
            "mean_abs_relative_center_shift", "mean_abs_log2_bandwidth_ratio",
            "mean_abs_center_shift_mel", "mean_abs_center_shift_erb",
            "mean_abs_center_shift_bands", "max_abs_center_shift_bands",
            "mean_response_distance")
#: The per-filter lists stored per fold, rounded to these decimals.
PER_FILTER = {"center_hz_initial": 1, "center_hz": 1,
              "center_shift_bands": 4}


class Experiments:
    """The study's definitions, read from ``experiments.yaml``.

    Example
    -------
    >>> exp = Experiments()
    >>> exp.define("mel_small_batch7")  # doctest: +NORMALIZE_WHITESPACE
    {'hparams': 'recipes/FSDD/hparams/mel_baseline.yaml',
     'overrides': ['--cnn_channels=[4,8,16,32]', '--max_batch_length=7.0'],
     'classifier_size': 'small'}
    >>> exp.baseline_of("cosgauss_small_batch7"), exp.plain_of("mel_pcen")
    ('mel_small_batch7', 'mel')
    >>> exp.command_overrides("mel_epochs18")[0]
    '--max_batch_length=14.0'
    """

    def __init__(self, path=EXPERIMENTS):
        with open(path, encoding="utf-8") as f:
            self.data = yaml.safe_load(f)
        self.recipe = self.data["recipe"]
        self.schedules = self.data["schedules"]
        self.variants = {**self.data["frontends"], **self.data["options"]}
        self.grid = {}
        for name, spec in self.data["systems"].items():
            variant, size, schedule = [*spec, None, None][:3]
            if variant not in self.variants or (
                    schedule is not None and schedule not in self.schedules):
                raise ValueError(f"{name}: unknown variant or schedule")
            self.grid[name] = (variant, size or "medium", schedule)
        self._names = {v: k for k, v in self.grid.items()}

    def lookup(self, variant, size="medium", schedule=None):
        """Return the system name of a (variant, size, schedule), or None."""
        return self._names.get((variant, size, schedule))

    def front_of(self, variant):
        """Return the front-end a variant is (or adds an option to)."""
        return self.variants[variant].get("front", variant)

    def _widths(self, size):
        return ",".join(map(str, self.data["sizes"][size]))

    def define(self, name):
        """Return a system's hparams file, own overrides and classifier size."""
        variant, size, schedule = self.grid[name]
        front = self.data["frontends"][self.front_of(variant)]
        overrides = list(self.variants[variant].get("overrides", []))
        if size != "medium":
            overrides.append(f"--cnn_channels=[{self._widths(size)}]")
        if schedule:
            overrides += self.schedules[schedule]["overrides"]
        return {"hparams": f"{self.recipe['folder']}/hparams/"
                f"{front['hparams']}", "overrides": overrides,
                "classifier_size": size}

    def command_overrides(self, name):
        """Return the base options the system leaves unset, then its own."""
        own = self.define(name)["overrides"]
        keys = {o.split("=", 1)[0] for o in own}
        return [o for o in self.recipe["base_overrides"]
                if o.split("=", 1)[0] not in keys] + own

    def describe(self, name, recipe_suffix=True):
        """Describe a system (``recipe_suffix``: even the recipe's schedule)."""
        variant, size, schedule = self.grid[name]
        text = self.variants[variant]["label"]
        if size != "medium":
            text += f", {size} CNN [{self._widths(size)}]"
        if schedule and (recipe_suffix or
                         schedule != self.recipe["schedule"]):
            text += ", " + self.schedules[schedule]["description"]
        return text

    def baseline_of(self, name):
        """Return log-mel with the same classifier and schedule."""
        _, size, schedule = self.grid[name]
        return self.lookup(self.recipe["baseline"], size, schedule)

    def plain_of(self, name):
        """Return the system an option changes (default size), or None."""
        variant, size, schedule = self.grid[name]
        front = self.front_of(variant)
        if front == variant or size != "medium":
            return None
        return self.lookup(front, size, schedule)

    def match(self, patterns):
        """Return the names matching shell patterns, in order per pattern."""
        return [n for p in patterns for n in self.grid
                if fnmatch.fnmatchcase(n, p)]


# ---------------------------------------------------------------- store

def load_store(path=STORE):
    """Read a store (``{"systems": {}}`` when there is none)."""
    if not os.path.isfile(path):
        return {"systems": {}}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_store(store, path=STORE):
    """Write a store atomically: a line per fold result, per number list."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = re.sub(r"\[\s+([-+.,\deE\s]+?)\s+\]",
                  lambda m: "[" + re.sub(r",\s+", ", ", m[1]) + "]",
                  json.dumps(store, indent=1))
    from speechbrain_relevance.data.preparation import write_text

    write_text(path, text + "\n")


@contextlib.contextmanager
def locked_store(path=STORE):
    """Yield the store, read under a lock and written back on exit."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        store = load_store(path)
        yield store
        save_store(store, path)


def merge_entry(name, entry, other):
    """Join two entries of one system (seeds run elsewhere).

    ``entry``'s per-seed values win, but for a filter movement per fold
    (``folds``), which replaces one without.

    Raises
    ------
    ValueError
        If they define the system differently, or a seed in both has
        other fold accuracies (not the same run).
    """
    for key in DEFINITION:
        if entry.get(key) != other.get(key):
            raise ValueError(
                f"{name}: the two define the system differently ({key}: "
                f"{entry.get(key)!r} != {other.get(key)!r})")
    merged, mine = dict(entry), entry.get("fold_accuracies", {})
    for seed, folds in other.get("fold_accuracies", {}).items():
        if seed in mine and mine[seed] != folds:
            raise ValueError(f"{name}: seed {seed} is in both with other "
                             "fold accuracies (not the same run)")
    for key in PER_SEED:
        both = {**(other.get(key) or {}), **(entry.get(key) or {})}
        if key == "filter_movement":
            both.update({s: m for s, m in (other.get(key) or {}).items()
                         if m and "folds" in m})
        if both or key in entry or key in other:
            merged[key] = dict(sorted(both.items(), key=lambda i: int(i[0])))
    return merged


def merge_stores(store, other, exp=None):
    """Join ``other``'s systems (with ``exp``: defined so) into ``store``.

    Returns the names whose seeds changed.
    """
    changed = []
    for name, entry in other["systems"].items():
        if exp is not None:
            check_definition(exp, name, entry)
        mine = store["systems"].get(name)
        merged = entry if mine is None else merge_entry(name, mine, entry)
        if mine is None or (set(merged["fold_accuracies"])
                            != set(mine["fold_accuracies"])):
            changed.append(name)
        store["systems"][name] = merged
    return changed


def check_definition(exp, name, entry):
    """Raise ValueError unless ``exp`` defines ``name`` as ``entry`` was."""
    if name not in exp.grid:
        raise ValueError(f"{name} is not in experiments.yaml: add it "
                         "under `systems` (its overrides: "
                         f"{entry.get('overrides')})")
    mine = exp.define(name)
    if any(mine[k] != entry.get(k) for k in DEFINITION):
        raise ValueError(f"{name}: experiments.yaml defines {mine}, the "
                         f"runs were {[entry.get(k) for k in DEFINITION]}")


# ---------------------------------------------------------------- runner

def minutes(seconds):
    """Return ``12.3 min`` or, from 90 minutes, ``2.1 h``."""
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min"


class Progress:
    """Progress lines with the elapsed time and what remains.

    The estimate: the mean wall time per trained fold so far (with
    ``--jobs`` parallel runs, wall time already counts the parallelism)
    times the folds left.
    """

    def __init__(self, folds, runs, clock=time.monotonic):
        self.total, self.done = {"fold": folds, "run": runs}, {}
        self.clock, self.start = clock, clock()

    def line(self, kind, text, seconds):
        """Count a trained ``fold`` or a finished ``run``; return its line."""
        done = self.done[kind] = self.done.get(kind, 0) + 1
        folds = self.done.get("fold", 0)
        elapsed, left = self.clock() - self.start, self.total["fold"] - folds
        eta = (f", about {minutes(elapsed / folds * left)} left"
               if folds and left else "")
        return (f"{kind} {done}/{self.total[kind]}: {text} "
                f"({minutes(seconds)}); elapsed {minutes(elapsed)}{eta}")


_LOADING = threading.Lock()


def _g6(value):
    return None if value is None else float(f"{value:.6g}")


def fold_movement(fold_folder):
    """Return how far a fold's filters moved, from its checkpoint.

    The :data:`MOVEMENT` summaries and :data:`PER_FILTER` lists of
    :func:`~speechbrain_relevance.analysis.movement.filter_movement`;
    None for fixed filters (a frozen learnable bank moves exactly 0).
    """
    from speechbrain_relevance.analysis import load_trained
    from speechbrain_relevance.analysis.figures import is_learnable_filterbank
    from speechbrain_relevance.analysis.movement import filter_movement

    # One at a time: loading builds the yaml's objects and re-seeds the
    # global random generators to rebuild a random initial bank, which
    # two threads must not interleave.
    with _LOADING:
        model = load_trained(fold_folder)
    if not is_learnable_filterbank(model.compute_features):
        return None
    m = filter_movement(model.initial_compute_features,
                        model.compute_features)
    return {**{k: _g6(m[k]) for k in MOVEMENT},
            **{k: [round(v, d) + 0.0 for v in m[k]]
               for k, d in PER_FILTER.items()}}


def seed_movement(folds):
    """Return a seed's movement: each summary's mean over ``folds``, and them.

    Example
    -------
    >>> fold = dict.fromkeys(MOVEMENT, 0.0)
    >>> m = seed_movement({"a": fold, "b": {**fold, MOVEMENT[0]: 3.0}})
    >>> m[MOVEMENT[0]], m[MOVEMENT[1]], sorted(m["folds"])
    (1.5, 0.0, ['a', 'b'])
    """
    if not folds:
        return None
    values = {k: [f[k] for f in folds.values()] for k in MOVEMENT}
    return {**{k: None if None in v else _g6(statistics.fmean(v))
               for k, v in values.items()}, "folds": folds}


def train_fold(exp, name, seed, speaker, out, data_folder, extra=()):
    """Train and test one fold in a subprocess; return its wall, CPU s.

    Written to the fold's :data:`TIMING` unless it resumed.
    """
    # an extra override replaces the system's own (a key given twice
    # stops the recipe's yaml loader)
    keys = {o.split("=", 1)[0] for o in extra}
    cmd = [sys.executable, os.path.join(ROOT, exp.recipe["folder"],
                                        "train.py"),
           os.path.join(ROOT, exp.define(name)["hparams"]),
           f"--data_folder={os.path.abspath(data_folder)}",
           f"--seed={seed}", f"--output_folder={out}",
           *(o for o in exp.command_overrides(name)
             if o.split("=", 1)[0] not in keys),
           *extra, f"--test_fold={speaker}"]
    # a fold resumed from its checkpoint is not timed: its time would be
    # the resumed part's alone, and its run's CPU minutes too low
    fold = os.path.join(out, f"fold_{speaker}")
    resumed = os.path.isdir(os.path.join(fold, "save"))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, env.get("PYTHONPATH")) if p)
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    with open(os.path.join(out, "study_log.txt"), "a") as log:
        print(*cmd, file=log, flush=True)
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env,
                                cwd=ROOT)
        # wait4 reports the CPU time of the fold's process alone: what one
        # core needs, whatever else the machine did meanwhile.
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{name} seed {seed} fold {speaker} failed; "
                           f"see {out}/study_log.txt")
    timing = {"wall": time.perf_counter() - start,
              "cpu": usage.ru_utime + usage.ru_stime}
    if not resumed:
        from speechbrain_relevance.data.preparation import write_json

        # atomic: a half-written timing would stop read_run
        write_json(os.path.join(fold, TIMING), timing)
    return timing


def fold_accuracy(fold_folder):
    """Return a fold's test accuracy, or None before its test."""
    from speechbrain_relevance.training.crossval import load_summary

    summary = load_summary(os.path.join(fold_folder, "test_results.json"))
    return None if summary is None else summary["accuracy"]


def read_run(out, speakers):
    """Read a finished run's raw results from its folder.

    This runner's folders or the old ``benchmarks/real_audio.py``'s; None
    if a fold has no test results yet. CPU minutes only where this runner
    timed every fold.
    """
    from speechbrain_relevance.training.crossval import load_valid_accuracy

    test, valid, moved, timings = {}, {}, {}, []
    for spk in speakers:
        folder = os.path.join(out, f"fold_{spk}")
        test[spk] = fold_accuracy(folder)
        if test[spk] is None:
            return None
        valid[spk] = load_valid_accuracy(folder)
        if os.path.isdir(os.path.join(folder, "save")):
            moved[spk] = fold_movement(folder)
        with contextlib.suppress(OSError):
            with open(os.path.join(folder, TIMING)) as f:
                timings.append(json.load(f))
    run = {"fold_accuracies": test, "fold_valid_accuracies": valid,
           "filter_movement": seed_movement({k: m for k, m in moved.items()
                                             if m})}
    if len(timings) == len(speakers):  # every fold timed by this study
        for key, what in (("cpu_minutes_per_run", "cpu"),
                          ("minutes_per_run", "wall")):
            run[key] = round(sum(t[what] for t in timings) / 60, 2)
    return run


def run_study(exp, names, seeds, runs, store_path=STORE, data_folder=None,
              jobs=2, speakers=None, extra=(), train=True, echo=print,
              clock=time.monotonic):
    """Run every (system, seed) the store lacks, ``jobs`` at a time.

    Finished folds are read, not rerun: an interrupted study resumes.
    Each run joins the store when its last fold finishes. With
    ``train=False`` the finished runs under ``runs`` are collected (made
    in another folder or checkout, or by the old runner), stored ones too
    where their filter movement lacks the per-fold data. Returns the
    failures (list of str).
    """
    speakers = list(speakers or exp.recipe["speakers"])
    stored = load_store(store_path)["systems"]

    def todo(name, seed):
        entry, seed = stored.get(name, {}), str(seed)
        moved = (entry.get("filter_movement") or {}).get(seed)
        return seed not in entry.get("fold_accuracies", {}) or (
            not train and moved is not None and "folds" not in moved)

    # Seed-major: every system's seed 1 before any seed 2, so that an
    # interrupted study still has paired runs of every system.
    pending = [(n, s) for s in seeds for n in names if todo(n, s)]
    left = sum(fold_accuracy(os.path.join(runs, n, str(s), f"fold_{k}"))
               is None for n, s in pending for k in speakers) if train else 0
    progress = Progress(left, len(pending), clock)
    lock, failures = threading.Lock(), []
    echo(f"{len(pending)} runs to do, {left} folds to train")

    def work(job):
        name, seed = job
        out, start = os.path.join(runs, name, str(seed)), clock()
        for spk in speakers if train else ():
            if fold_accuracy(os.path.join(out, f"fold_{spk}")) is not None:
                continue
            try:
                t = train_fold(exp, name, seed, spk, out, data_folder, extra)
            except RuntimeError as e:
                t = e
            with lock:
                if isinstance(t, RuntimeError):
                    failures.append(str(t))
                    return echo(f"FAILED {t}")
                acc = fold_accuracy(os.path.join(out, f"fold_{spk}"))
                echo(progress.line("fold", f"{name} seed {seed} {spk} "
                                   f"{100 * acc:.1f}%", t["wall"]))
        run = read_run(out, speakers)
        if run is None:
            return None
        entry = {**exp.define(name), **{
            k: {str(seed): run[k]} for k in PER_SEED if k in run}}
        with lock, locked_store(store_path) as store:
            try:
                merge_stores(store, {"systems": {name: entry}})
            except ValueError as e:
                failures.append(str(e))
                return echo(f"FAILED {e}")
            acc = statistics.fmean(run["fold_accuracies"].values())
            echo(progress.line("run", f"{name} seed {seed} {100 * acc:.1f}% "
                               f"over {len(speakers)} folds", clock() - start))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(work, pending))
    return failures


# ---------------------------------------------------------------- CLI

def seed_list(text):
    """Return the seeds of a ``1-5`` or ``11`` token.

    Example
    -------
    >>> seed_list("1-3"), seed_list("11")
    ([1, 2, 3], [11])
    """
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def parser():
    """Build the command line parser."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiments", default=EXPERIMENTS)
    p.add_argument("--store", default=STORE, help="the runs (runs.json)")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (system, seed) cross-validations")
    run.add_argument("--systems", nargs="+", required=True,
                     help="names or shell patterns of experiments.yaml")
    run.add_argument("--seeds", nargs="+", type=seed_list, default=[[1]],
                     help="seeds or ranges (1-5)")
    run.add_argument("--jobs", type=int, default=2)
    run.add_argument("--runs", help="runs folder (default: the yaml's)")
    run.add_argument("--data_folder", default=os.path.join(
        ROOT, "..", "shared", "datasets", "fsdd"))
    run.add_argument("--folds", nargs="+", help="only these speakers")
    run.add_argument("--extra", action="append", default=[],
                     help="one more override for every fold, as "
                     "--extra=--number_of_epochs=1 (a smoke run)")
    run.add_argument("--collect", action="store_true",
                     help="train nothing: store the finished runs found "
                     "(and the filter movement per fold of stored ones)")
    sub.add_parser("report", help="analysis.json, the pages' tables, the "
                   "plots (movement.png: where the filters went)"
                   ).add_argument("--no-plots", action="store_true")
    sub.add_parser("tables", help="print every table")
    sub.add_parser("list", help="the systems and their overrides")
    sub.add_parser("merge", help="join other stores (runs.json) into the "
                   "store").add_argument("files", nargs="+")
    return p


def main(argv=None):
    """Run a command; return the exit status."""
    args = parser().parse_args(argv)
    exp = Experiments(args.experiments)
    if args.command == "list":
        for name in exp.grid:
            print(f"{name:36s} {' '.join(exp.define(name)['overrides'])}")
    elif args.command == "merge":
        for path in args.files:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            with locked_store(args.store) as store:
                changed = merge_stores(store, data, exp)
            print(f"{path}: {len(changed)} systems with new seeds: "
                  + " ".join(changed))
    elif args.command == "run":
        names = exp.match(args.systems)
        if not names:
            raise SystemExit(f"no system matches {args.systems}")
        runs = args.runs or os.path.join(ROOT, exp.recipe["runs_folder"])
        return 1 if run_study(
            exp, names, [s for group in args.seeds for s in group], runs,
            args.store, args.data_folder, args.jobs, args.folds, args.extra,
            train=not args.collect) else 0
    else:
        store = load_store(args.store)
        old = load_store(study_report.OLD_RECIPE)["systems"]
        if args.command == "tables":
            print(study_report.print_tables(exp, store, old))
            return 0
        save_store(study_report.analysis(exp, store), ANALYSIS)
        print(f"wrote {ANALYSIS}")
        for line in study_report.report(exp, store, old,
                                        plots=not args.no_plots):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
