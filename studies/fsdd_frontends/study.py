r"""The FSDD front-end study: run it, store its runs, report it.

Every system of ``experiments.yaml`` runs the FSDD recipe's six-fold
leave-one-speaker-out cross-validation per seed: one ``train.py``
subprocess per fold (``--test_fold=<speaker>``, one CPU thread), the
folds of a (system, seed) in turn and ``--jobs`` of those at a time.
``results/runs.json`` keeps only raw results per (system, seed, fold);
``study.py report`` derives everything else (``results/analysis.json``,
the tables of RESULTS.md and of the yaml's pages, the plots).

Usage::

    python studies/fsdd_frontends/study.py run --systems mel_batch7 \
        --seeds 1-5 [--jobs 2] [--data_folder ../shared/datasets/fsdd]
    python studies/fsdd_frontends/study.py report
    python studies/fsdd_frontends/study.py tables    # print them
    python studies/fsdd_frontends/study.py import-legacy OLD.json
    python studies/fsdd_frontends/study.py merge OTHER_runs.json
    python studies/fsdd_frontends/study.py list

Authors
 * speechbrain-relevance developers
"""

import argparse
import contextlib
import fcntl
import fnmatch
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXPERIMENTS = os.path.join(HERE, "experiments.yaml")
STORE = os.path.join(HERE, "results", "runs.json")
#: Per-seed raw fields of a store entry (seed -> value).
PER_SEED = ("fold_accuracies", "fold_valid_accuracies", "filter_movement",
            "cpu_minutes_per_run", "minutes_per_run")
#: What must agree for two entries to be runs of the same system.
DEFINITION = ("hparams", "overrides", "classifier_size")
#: Written into each fold folder: its training's wall and CPU seconds.
TIMING = "study_timing.json"


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
    >>> exp.lookup("relevance_2head", "medium", "batch7_24ep")
    'relevance_2head_batch7_24ep'
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
            size = size or "medium"
            if variant not in self.variants or (
                    schedule is not None and schedule not in self.schedules):
                raise ValueError(f"{name}: unknown variant or schedule")
            self.grid[name] = (variant, size, schedule)
        self._names = {v: k for k, v in self.grid.items()}

    def lookup(self, variant, size="medium", schedule=None):
        """Return the system name of a (variant, size, schedule), or None."""
        return self._names.get((variant, size, schedule))

    def front_of(self, variant):
        """Return the front-end a variant is (or adds an option to)."""
        return self.variants[variant].get("front", variant)

    def define(self, name):
        """Return a system's hparams file, own overrides and classifier size."""
        variant, size, schedule = self.grid[name]
        spec = self.variants[variant]
        front = self.data["frontends"][self.front_of(variant)]
        overrides = list(spec.get("overrides", []))
        if size != "medium":
            widths = ",".join(map(str, self.data["sizes"][size]))
            overrides.append(f"--cnn_channels=[{widths}]")
        if schedule:
            overrides += self.schedules[schedule]["overrides"]
        return {"hparams": f"{self.recipe['folder']}/hparams/"
                f"{front['hparams']}", "overrides": overrides,
                "classifier_size": size}

    def command_overrides(self, name):
        """Return the base options the system leaves unset, then its own.

        Example
        -------
        >>> Experiments().command_overrides("mel_epochs18")[0]
        '--max_batch_length=14.0'
        """
        own = self.define(name)["overrides"]
        keys = {o.split("=", 1)[0] for o in own}
        return [o for o in self.recipe["base_overrides"]
                if o.split("=", 1)[0] not in keys] + own

    def describe(self, name, recipe_suffix=True):
        """Return a system's description.

        Without the recipe's schedule if ``recipe_suffix`` is False.
        """
        variant, size, schedule = self.grid[name]
        text = self.variants[variant]["label"]
        if size != "medium":
            widths = ",".join(map(str, self.data["sizes"][size]))
            text += f", {size} CNN [{widths}]"
        if schedule and (recipe_suffix or
                         schedule != self.recipe["schedule"]):
            text += ", " + self.schedules[schedule]["description"]
        return text

    def baseline_of(self, name):
        """Log-mel with the same classifier and schedule."""
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
        """Grid names matching shell patterns, in grid order per pattern."""
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
    """Write a store atomically (one line per fold result, diffable)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(store, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def locked_store(path=STORE):
    """Yield the store, read under a lock and written back on exit.

    Runs of other invocations that finished meanwhile are kept.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        store = load_store(path)
        yield store
        save_store(store, path)


def merge_entry(name, entry, other):
    """Join two entries of one system (seeds run elsewhere).

    Raises
    ------
    ValueError
        If they define the system differently, or a seed in both has
        other fold accuracies (not the same run).

    Example
    -------
    >>> a = {"hparams": "h", "overrides": [], "classifier_size": "medium",
    ...      "fold_accuracies": {"1": {"x": 0.8}},
    ...      "cpu_minutes_per_run": {"1": 5.0}}
    >>> b = dict(a, fold_accuracies={"2": {"x": 0.9}},
    ...          cpu_minutes_per_run={"2": 6.0})
    >>> m = merge_entry("mel", a, b)
    >>> m["fold_accuracies"], m["cpu_minutes_per_run"]
    ({'1': {'x': 0.8}, '2': {'x': 0.9}}, {'1': 5.0, '2': 6.0})
    >>> merge_entry("mel", a, dict(b, overrides=["--n_bands=80"]))
    Traceback (most recent call last):
    ...
    ValueError: mel: the two define the system differently (overrides: \
[] != ['--n_bands=80'])
    """
    for key in DEFINITION:
        if entry.get(key) != other.get(key):
            raise ValueError(
                f"{name}: the two define the system differently ({key}: "
                f"{entry.get(key)!r} != {other.get(key)!r})")
    merged = dict(entry)
    mine = entry.get("fold_accuracies", {})
    for seed, folds in other.get("fold_accuracies", {}).items():
        if seed in mine and mine[seed] != folds:
            raise ValueError(f"{name}: seed {seed} is in both with other "
                             "fold accuracies (not the same run)")
    for key in PER_SEED:
        both = {**(other.get(key) or {}), **(entry.get(key) or {})}
        if both or key in entry or key in other:
            merged[key] = dict(sorted(both.items(), key=lambda i: int(i[0])))
    return merged


def merge_stores(store, other, exp=None):
    """Join every system of ``other`` into ``store``.

    Returns the names whose seeds changed. With ``exp``, each must be
    defined as there.
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
    """Raise ValueError unless ``experiments.yaml`` defines ``name``.

    It must be defined as the entry's runs were made.
    """
    if name not in exp.grid:
        raise ValueError(f"{name} is not in experiments.yaml: add it "
                         "under `systems` (its overrides: "
                         f"{entry.get('overrides')})")
    mine = exp.define(name)
    if any(mine[k] != entry.get(k) for k in DEFINITION):
        raise ValueError(f"{name}: experiments.yaml defines {mine}, the "
                         f"runs were {[entry.get(k) for k in DEFINITION]}")


def import_legacy(data, exp=None):
    """Turn a ``real_audio.json`` (the old benchmark's format) into a store.

    Only the raw per-run values are kept; means, intervals and picks are
    derived again by the report. With ``exp`` every system must be defined
    there exactly so (without: a retired recipe, kept as it was, with its
    description).

    Example
    -------
    >>> old = {"systems": {"mel_batch7": {
    ...     "hparams": "recipes/FSDD/hparams/mel_baseline.yaml",
    ...     "overrides": ["--max_batch_length=7.0"], "seeds": [3],
    ...     "classifier_size": "medium", "mean": 0.8, "accuracies": [0.8],
    ...     "valid_accuracies": [0.7], "filter_movement": [None],
    ...     "fold_accuracies": {"3": {"a": 0.8}},
    ...     "fold_valid_accuracies": {"3": {"a": 0.7}},
    ...     "cpu_minutes_per_run": {"3": 4.2}}}}
    >>> entry = import_legacy(old, Experiments())["systems"]["mel_batch7"]
    >>> entry["filter_movement"], entry["cpu_minutes_per_run"], "mean" in entry
    ({'3': None}, {'3': 4.2}, False)
    """
    store = {"systems": {}}
    systems = {**data.get("systems", {}), **data.get("screened", {})}
    for name, e in systems.items():
        seeds = [str(s) for s in e["seeds"]]
        entry = {"hparams": e["hparams"], "overrides": e["overrides"],
                 "classifier_size": e.get("classifier_size", "medium")}
        if exp is None:
            entry["description"] = e.get("description")
        else:
            check_definition(exp, name, entry)
        entry["fold_accuracies"] = e["fold_accuracies"]
        entry["fold_valid_accuracies"] = e.get("fold_valid_accuracies") or {}
        if not entry["fold_valid_accuracies"]:
            # the oldest runs kept only each seed's mean
            entry["valid_accuracies"] = dict(zip(seeds,
                                                 e["valid_accuracies"]))
        entry["filter_movement"] = dict(zip(seeds, e["filter_movement"]))
        for key in ("cpu_minutes_per_run", "minutes_per_run"):
            entry[key] = e.get(key) or {}
        store["systems"][name] = entry
    return store


# ---------------------------------------------------------------- runner

def minutes(seconds):
    """``12.3 min`` or ``2.1 h``.

    Example
    -------
    >>> minutes(738), minutes(7560)
    ('12.3 min', '2.1 h')
    """
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min"


class Progress:
    """Progress lines with the elapsed time and what remains.

    The estimate is the mean wall time per trained fold so far (with
    ``--jobs`` parallel runs, wall time already counts the parallelism)
    times the folds left.

    Example
    -------
    >>> now = [0.0]
    >>> p = Progress(folds=4, runs=2, clock=lambda: now[0])
    >>> now[0] = 60.0
    >>> p.fold("mel", 1, "theo", 0.85, 60.0)
    'fold 1/4: mel seed 1 theo 85.0% (1.0 min); elapsed 1.0 min, about \
3.0 min left'
    >>> now[0] = 120.0
    >>> _ = p.fold("mel", 1, "lucas", 0.75, 60.0)
    >>> p.run("mel", 1, 0.8, 2, 120.0)
    'run 1/2: mel seed 1 80.0% over 2 folds (2.0 min); elapsed 2.0 min, \
about 2.0 min left'
    """

    def __init__(self, folds, runs, clock=time.monotonic):
        self.folds, self.runs, self.clock = folds, runs, clock
        self.start = clock()
        self.folds_done = self.runs_done = 0

    def _times(self):
        elapsed = self.clock() - self.start
        left = self.folds - self.folds_done
        eta = (f", about {minutes(elapsed / self.folds_done * left)} left"
               if self.folds_done and left else "")
        return f"elapsed {minutes(elapsed)}{eta}"

    def fold(self, name, seed, speaker, acc, seconds):
        """Count a trained fold; return its line."""
        self.folds_done += 1
        return (f"fold {self.folds_done}/{self.folds}: {name} seed {seed} "
                f"{speaker} {100 * acc:.1f}% ({minutes(seconds)}); "
                + self._times())

    def run(self, name, seed, acc, n_folds, seconds):
        """Count a finished (system, seed) run; return its line."""
        self.runs_done += 1
        return (f"run {self.runs_done}/{self.runs}: {name} seed {seed} "
                f"{100 * acc:.1f}% over {n_folds} folds "
                f"({minutes(seconds)}); " + self._times())


def fold_movement(fold_folder):
    """How far a fold's learnable filters moved (None: fixed filters)."""
    from speechbrain_relevance.analysis import load_trained
    from speechbrain_relevance.analysis.figures import is_learnable_filterbank
    from speechbrain_relevance.analysis.movement import filter_movement

    model = load_trained(fold_folder)
    if not is_learnable_filterbank(model.compute_features):
        return None
    m = filter_movement(model.initial_compute_features,
                        model.compute_features)
    return {k: m[k] for k in ("mean_abs_center_shift_hz",
                              "max_abs_center_shift_hz",
                              "mean_abs_relative_center_shift",
                              "mean_abs_log2_bandwidth_ratio")}


def train_fold(exp, name, seed, speaker, out, data_folder, extra=()):
    """Train and test one fold in a subprocess; return (wall, CPU) s."""
    recipe = os.path.join(ROOT, exp.recipe["folder"])
    # an extra override replaces the system's own (a key given twice
    # stops the recipe's yaml loader)
    keys = {o.split("=", 1)[0] for o in extra}
    cmd = [sys.executable, os.path.join(recipe, "train.py"),
           os.path.join(ROOT, exp.define(name)["hparams"]),
           f"--data_folder={os.path.abspath(data_folder)}",
           f"--seed={seed}", f"--output_folder={out}",
           *(o for o in exp.command_overrides(name)
             if o.split("=", 1)[0] not in keys),
           *extra, f"--test_fold={speaker}"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, env.get("PYTHONPATH")) if p)
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    with open(os.path.join(out, "study_log.txt"), "a") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
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
    with open(os.path.join(out, f"fold_{speaker}", TIMING), "w") as f:
        json.dump(timing, f)
    return timing


def read_run(out, speakers):
    """Read a finished run's raw results from its folder.

    None if a fold has no test results yet.
    """
    from speechbrain_relevance.training.crossval import (
        load_summary,
        load_valid_accuracy,
    )

    test, valid, moved, timings = {}, {}, [], []
    for spk in speakers:
        folder = os.path.join(out, f"fold_{spk}")
        summary = load_summary(os.path.join(folder, "test_results.json"))
        if summary is None:
            return None
        test[spk] = summary["accuracy"]
        valid[spk] = load_valid_accuracy(folder)
        if os.path.isdir(os.path.join(folder, "save")):
            moved.append(fold_movement(folder))
        with contextlib.suppress(OSError):
            with open(os.path.join(folder, TIMING)) as f:
                timings.append(json.load(f))
    moved = [m for m in moved if m]
    run = {"fold_accuracies": test, "fold_valid_accuracies": valid,
           "filter_movement": {k: statistics.fmean(m[k] for m in moved)
                               for k in moved[0]} if moved else None}
    if len(timings) == len(speakers):  # every fold timed by this study
        run["cpu_minutes_per_run"] = round(
            sum(t["cpu"] for t in timings) / 60, 2)
        run["minutes_per_run"] = round(
            sum(t["wall"] for t in timings) / 60, 2)
    return run


def run_study(exp, names, seeds, runs, store_path=STORE, data_folder=None,
              jobs=2, speakers=None, extra=(), train=True, echo=print,
              clock=time.monotonic):
    """Run every (system, seed) the store lacks, ``jobs`` at a time.

    Finished folds (``test_results.json`` in their folder) are read, not
    rerun: an interrupted study resumes. Each run joins the store when its
    last fold finishes. With ``train=False`` only finished runs under
    ``runs`` are collected (runs made in another folder or checkout).

    Returns
    -------
    list of str
        The failures.
    """
    speakers = list(speakers or exp.recipe["speakers"])
    stored = load_store(store_path)["systems"]
    # Seed-major: every system's seed 1 before any seed 2, so that an
    # interrupted study still has paired runs of every system.
    todo = [(n, s) for s in seeds for n in names
            if str(s) not in stored.get(n, {}).get("fold_accuracies", {})]
    from speechbrain_relevance.training.crossval import fold_done

    def folder(name, seed):
        return os.path.join(runs, name, str(seed))

    left = sum(not fold_done(os.path.join(folder(n, s), f"fold_{spk}"))
               for n, s in todo for spk in speakers)
    progress = Progress(left if train else 0, len(todo), clock)
    lock, failures = threading.Lock(), []
    echo(f"{len(todo)} runs to do, {left} folds to train")

    def work(job):
        name, seed = job
        out, start = folder(name, seed), clock()
        for spk in speakers:
            if fold_done(os.path.join(out, f"fold_{spk}")) or not train:
                continue
            try:
                t = train_fold(exp, name, seed, spk, out, data_folder, extra)
            except RuntimeError as e:
                with lock:
                    failures.append(str(e))
                    echo(f"FAILED {e}")
                return
            acc = read_fold(out, spk)
            with lock:
                echo(progress.fold(name, seed, spk, acc, t["wall"]))
        run = read_run(out, speakers)
        if run is None:
            return
        entry = {**exp.define(name), **{
            k: {str(seed): run[k]} for k in PER_SEED if k in run}}
        with lock, locked_store(store_path) as store:
            merge_stores(store, {"systems": {name: entry}})
            echo(progress.run(name, seed,
                              statistics.fmean(run["fold_accuracies"]
                                               .values()),
                              len(speakers), clock() - start))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(work, todo))
    return failures


def read_fold(out, speaker):
    """Return a finished fold's test accuracy."""
    from speechbrain_relevance.training.crossval import load_summary

    path = os.path.join(out, f"fold_{speaker}", "test_results.json")
    return load_summary(path)["accuracy"]


# ---------------------------------------------------------------- CLI

def seed_list(text):
    """Seeds from ``1-5`` or ``11`` tokens.

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
    run.add_argument("--data_folder",
                     default=os.path.join(ROOT, "..", "shared", "datasets",
                                          "fsdd"))
    run.add_argument("--folds", nargs="+", help="only these speakers")
    run.add_argument("--extra", action="append", default=[],
                     help="one more override for every fold, as "
                     "--extra=--number_of_epochs=1 (a smoke run)")
    run.add_argument("--collect", action="store_true",
                     help="train nothing: store the finished runs found")
    rep = sub.add_parser("report", help="analysis.json, tables and plots")
    rep.add_argument("--no-plots", action="store_true")
    sub.add_parser("tables", help="print every table")
    sub.add_parser("list", help="the systems and their overrides")
    for verb, what in (("import-legacy", "real_audio.json files"),
                       ("merge", "other stores (runs.json)")):
        cmd = sub.add_parser(verb, help=f"join {what} into the store")
        cmd.add_argument("files", nargs="+")
        if verb == "import-legacy":
            cmd.add_argument("--as-is", action="store_true",
                             help="a retired recipe: keep its definitions")
    return p


def main(argv=None):
    """Run a command; returns the exit status."""
    args = parser().parse_args(argv)
    exp = Experiments(args.experiments)
    if args.command == "list":
        for name in exp.grid:
            print(f"{name:36s} {' '.join(exp.define(name)['overrides'])}")
    elif args.command in ("import-legacy", "merge"):
        for path in args.files:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if args.command == "import-legacy":
                data = import_legacy(data, None if args.as_is else exp)
            with locked_store(args.store) as store:
                changed = merge_stores(store, data,
                                       None if getattr(args, "as_is", 0)
                                       else exp)
            print(f"{path}: {len(changed)} systems with new seeds: "
                  + " ".join(changed))
    elif args.command == "run":
        names = exp.match(args.systems)
        if len(names) == 0:
            raise SystemExit(f"no system matches {args.systems}")
        seeds = [s for group in args.seeds for s in group]
        runs = args.runs or os.path.join(ROOT, exp.recipe["runs_folder"])
        failures = run_study(exp, names, seeds, runs, args.store,
                             args.data_folder, args.jobs, args.folds,
                             args.extra, train=not args.collect)
        return 1 if failures else 0
    else:
        sys.path.insert(0, HERE)
        import study_report

        if args.command == "tables":
            print(study_report.print_tables(exp, args.store))
        else:
            for line in study_report.report(exp, args.store,
                                            plots=not args.no_plots):
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
