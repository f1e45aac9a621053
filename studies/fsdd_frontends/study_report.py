r"""The FSDD study's report: tables from specs, analysis.json, plots.

One table writer serves every table: a spec of ``experiments.yaml``
names its rows (systems) and columns (keys of :data:`COLUMNS`, headed as
the yaml's ``columns`` says); each row holds a system's runs and those it
is compared with (its ``pair``, by default log-mel of the same size and
schedule; the ``plain`` system without its option; the ``short``
schedule it changes; its ``old`` recipe runs). Blocks
``<!-- study:KEY -->`` ... ``<!-- /study:KEY -->`` of RESULTS.md and of
the yaml's pages hold the tables, never edited by hand. Stores and
definitions are passed in: this module reads no store itself.

Authors
 * speechbrain-relevance developers
"""

import functools
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import study_stats as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS_MD = os.path.join(HERE, "RESULTS.md")
OLD_RECIPE = os.path.join(HERE, "results", "old_recipe.json")
BLOCK, END = "<!-- study:{} -->", "<!-- /study:{} -->"
EMPTY = "No runs yet."


def pct(value):
    """Return points with one decimal, or ``-``."""
    return "-" if value is None else f"{100 * value:.1f}"


def pm(mean_std):
    """Return ``mean ± std`` in points (the mean alone without a std)."""
    mean, std = mean_std
    return pct(mean) if std is None else f"{pct(mean)} ± {pct(std)}"


def interval(paired):
    """Return ``+1.2 [-0.3, +2.7]`` in points, or ``-``.

    Example
    -------
    >>> interval({"mean": 0.012, "ci95": [-0.003, 0.027]}), interval(None)
    ('+1.2 [-0.3, +2.7]', '-')
    """
    if not paired:
        return "-"
    lo, hi = (100 * v for v in paired["ci95"])
    return f"{100 * paired['mean']:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def won(paired):
    """Return ``wins/n`` or ``-``."""
    return f"{paired['wins']}/{paired['n']}" if paired else "-"


def pooled_cell(pooled):
    """Return ``std [lo, hi]`` in points, or ``-``."""
    if not pooled:
        return "-"
    lo, hi = pooled["ci95"]
    return f"{pct(pooled['std'])} [{pct(lo)}, {pct(hi)}]"


def restrict(entry, seeds):
    """Return an entry with only the runs of some seeds (its per-seed maps)."""
    return entry and {k: st.only_seeds(v, seeds) if isinstance(v, dict)
                      else v for k, v in entry.items()}


def runs(entry, valid=False):
    """Test (or validation) runs of an entry: seed -> fold -> accuracy."""
    key = "fold_valid_accuracies" if valid else "fold_accuracies"
    return (entry or {}).get(key) or {}


def seed_stats(entry, valid=False):
    """Mean and std over seeds of the per-seed test (or validation) means."""
    return st.mean_std(st.seed_means(runs(entry, valid)))


@functools.cache
def classifier_parameters(widths):
    """Trainable parameters of the FSDD CompactCNN with these widths.

    Example
    -------
    >>> classifier_parameters((8, 16, 32, 64))
    25154
    """
    from speechbrain_relevance.models import CompactCNN

    model = CompactCNN(n_bands=40, n_classes=10, channels=list(widths))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class Row:
    """A system's runs and what one table row compares them with."""

    def __init__(self, ctx, name, entry, pair=..., front=None, done=None):
        exp, defined = ctx.exp, name in ctx.exp.grid
        self.ctx, self.name, self.entry, self.front = ctx, name, entry, front
        self.variant, self.size, self.schedule = exp.grid.get(
            name, (name, entry.get("classifier_size"), None))
        systems = ctx.store["systems"]
        if pair is ...:  # a name: the spec's, or log-mel of this kind
            pair = ctx.spec.get("pair") or (
                exp.baseline_of(name) if defined else None)
            pair = None if pair == name else systems.get(pair or "")
        self.pair = pair
        self.plain = systems.get(defined and exp.plain_of(name) or "")
        after = exp.schedules.get(self.schedule or "", {}).get("after")
        self.short = systems.get(exp.lookup(self.variant, self.size, after)
                                 or "")
        self.old = ctx.old.get(ctx.spec.get("old", {}).get(name))
        self.done = done

    @property
    def spread(self):
        """Each test speaker's seed spread of this row's runs."""
        return st.seed_spread(runs(self.entry))

    def versus(self, other, valid=False, by_seed=False):
        """Paired difference to another entry (None without it)."""
        fn = st.paired_by_seed if by_seed else st.paired_difference
        return fn(runs(self.entry, valid), runs(other, valid))


def _cpu(r):
    cpu = list(r.entry.get("cpu_minutes_per_run", {}).values())
    return f"{min(cpu):.1f}-{max(cpu):.1f}" if cpu else "-"


def _moved(r, key, digits):
    """Mean over seeds of a stored filter movement summary, or ``-``."""
    vals = [m[key] for m in (r.entry.get("filter_movement") or {}).values()
            if m and m.get(key) is not None]
    return f"{statistics.fmean(vals):.{digits}f}" if vals else "-"


def _span(r):
    seeds = r.ctx.plan["seeds"]
    text = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    if len(r.done) < len(seeds):
        text += f" ({len(r.done)} of {len(seeds)} run)"
    return text


def _verdict(r):
    met = st.confirmed(r.versus(r.pair), r.versus(r.pair, by_seed=True),
                       r.done, r.ctx.plan["seeds"])
    return {None: "not complete", True: "beats (both intervals above zero)",
            False: "no claim (an interval reaches zero)"}[met]


def _within(r):
    if len(r.done) < len(r.ctx.plan["seeds"]):
        return "not complete"
    above = sum(v > r.ctx.target for v in r.spread.values())
    return (f"no: {above} speaker{'s' if above > 1 else ''} above "
            f"{pct(r.ctx.target)}" if above else "yes")


def _pass_rate(r):
    pooled = st.pooled_seed_std(runs(r.entry))
    if not pooled:
        return "-"
    rate = st.largest_spread_pass_rate(pooled["std"], r.ctx.target,
                                       len(runs(r.entry)), len(r.ctx.speakers))
    return f"{100 * rate:.0f}%" if rate >= 0.005 else "<1%"


def _largest(e):
    return pct(max(st.seed_spread(runs(e)).values(), default=None))


def _pooled(e, valid=False):
    return pooled_cell(st.pooled_seed_std(runs(e, valid)))


#: Column key -> cell of a :class:`Row` (headers: the yaml's ``columns``).
COLUMNS = {
    "system": lambda r: f"`{r.name}`",
    "system_short": lambda r: (
        f"{r.ctx.exp.describe(r.name, False)} (`{r.name}`)"),
    "system_long": lambda r: f"{r.ctx.exp.describe(r.name)} (`{r.name}`)",
    "system_seeds": lambda r: f"`{r.name}` ({len(runs(r.entry))} seeds)",
    "system_old_new": lambda r: (
        f"`{r.name}` ({len(runs(r.old))} → {len(runs(r.entry))} seeds)"),
    "description": lambda r: r.ctx.exp.describe(r.name),
    "front": lambda r: f"`{r.variant}`",
    "front_name": lambda r: r.ctx.exp.data["frontends"][r.front]["name"],
    "pick": lambda r: f"`{r.name}`",
    "classifier": lambda r: f"{r.size} {r.ctx.exp.data['sizes'][r.size]}",
    "parameters": lambda r: format(classifier_parameters(
        tuple(r.ctx.exp.data["sizes"][r.size])), ","),
    "test": lambda r: pm(seed_stats(r.entry)),
    "short_test": lambda r: pm(seed_stats(r.short)),
    "run_mean": lambda r: pct(st.run_mean(runs(r.entry))),
    "pair_mean": lambda r: pct(st.run_mean(runs(r.pair))),
    "vs": lambda r: interval(r.versus(r.pair)),
    "won": lambda r: won(r.versus(r.pair)),
    "by_seed": lambda r: interval(r.versus(r.pair, by_seed=True)),
    "won_by_seed": lambda r: won(r.versus(r.pair, by_seed=True)),
    "valid": lambda r: pm(seed_stats(r.entry, valid=True)),
    "valid_vs": lambda r: interval(r.versus(r.pair, valid=True)),
    "vs_plain": lambda r: interval(r.versus(r.plain)),
    "valid_vs_plain": lambda r: interval(r.versus(r.plain, valid=True)),
    "gain": lambda r: interval(r.versus(r.short)),
    "valid_gain": lambda r: interval(r.versus(r.short, valid=True)),
    "max_std": lambda r: _largest(r.entry),
    "largest": lambda r: f"**{_largest(r.entry)}**",
    "pooled": lambda r: _pooled(r.entry),
    "pooled_valid": lambda r: _pooled(r.entry, valid=True),
    "seeds": lambda r: str(len(runs(r.entry))),
    "shift": lambda r: _moved(r, "mean_abs_center_shift_hz", 1),
    "shift_bands": lambda r: _moved(r, "mean_abs_center_shift_bands", 3),
    "response_distance": lambda r: _moved(r, "mean_response_distance", 4),
    "cpu": _cpu,
    "timed": lambda r: str(len(r.entry.get("cpu_minutes_per_run") or {})),
    "plan_seeds": _span,
    "verdict": _verdict,
    "within_target": _within,
    "largest_old_new": lambda r: (
        f"**{_largest(r.old)} → {_largest(r.entry)}**"),
    "pooled_old_new": lambda r: f"{_pooled(r.old)} → {_pooled(r.entry)}",
    "pass_rate": _pass_rate,
}
#: Column key -> cell of a (row, speaker): a column per test speaker.
SPEAKER_COLUMNS = {
    "speakers_std": lambda r, s: pct(r.spread.get(s)),
    "speakers_interval": lambda r, s: pooled_cell(st.pooled_seed_std(
        {seed: {s: f[s]} for seed, f in runs(r.entry).items() if s in f})),
    "speakers_old_new": lambda r, s: " → ".join(
        pct(st.seed_spread(runs(e)).get(s)) for e in (r.old, r.entry)),
}


class Context:
    """What a table's rows share: the study, its runs, the spec."""

    def __init__(self, exp, store, old, spec):
        self.exp, self.store, self.old, self.spec = exp, store, old, spec
        self.speakers = sorted(exp.recipe["speakers"])
        self.plan = exp.data["plans"].get(spec.get("plan"))
        self.target = exp.data["plans"]["stability_check"]["target"]


def tuned_pick(exp, systems, front, size="medium"):
    """Return the variant of a front-end that validation picks (or None).

    Candidates: the front-end with each tuning schedule and, at the
    default size, each tuning option of it with the recipe's schedule.
    """
    tuning = exp.data["tuning"]
    names = [exp.lookup(front, size, s) for s in tuning["schedules"]]
    if size == "medium":
        names += [exp.lookup(o, size, exp.recipe["schedule"])
                  for o in tuning["options"] if exp.front_of(o) == front]
    return validation_pick(systems, names)


def validation_pick(systems, names):
    """Return which of ``names`` validation picks, on their shared seeds."""
    return st.tuned_pick({n: runs(systems[n], True) for n in names
                          if n in systems})


def _plan_rows(ctx):
    """Rows of a registered plan, on its own seeds."""
    systems, plan = ctx.store["systems"], ctx.plan
    if "system" in plan:  # a registered comparison
        e, b = (restrict(systems.get(plan[k]), plan["seeds"])
                for k in ("system", "baseline"))
        if e is None or b is None:
            return []
        done = sorted(int(s) for s in set(runs(e)) & set(runs(b)))
        return [Row(ctx, plan["system"], e, b, done=done)]
    rows = [Row(ctx, n, restrict(systems[n], plan["seeds"]))
            for n in plan["systems"] if n in systems]
    for r in rows:
        r.done = sorted(int(s) for s in runs(r.entry))
    return rows if any(r.done for r in rows) else []


def _names(ctx):
    """Return the system names a (non-plan, non-tuned) spec lists."""
    exp, spec, systems = ctx.exp, ctx.spec, ctx.store["systems"]
    if "grid" in spec:
        g = spec["grid"]
        return [exp.lookup(v, size, s) for v in g["variants"]
                for size in g.get("sizes", ["medium"])
                for s in g.get("schedules", [None])]
    if "select" in spec:
        sel = spec["select"]
        return [n for n, (_, _, s) in exp.grid.items()
                if s == sel["schedule"] and (not sel.get("options") or
                                             exp.plain_of(n) in systems)]
    if spec["rows"] == "all":
        return list(systems)
    names = []
    for item in spec["rows"]:
        if isinstance(item, dict):  # {tuned: FRONT} or {pick: [names]}
            if "tuned" in item:
                pick = tuned_pick(exp, systems, item["tuned"])
            else:
                pick = validation_pick(systems, exp.match(item["pick"]))
            names += [pick] if pick else []
        else:
            names += exp.match([item]) or [item]
    return list(dict.fromkeys(names))


def table_rows(ctx):
    """Return the rows a spec names, with runs, in its order."""
    exp, spec, systems = ctx.exp, ctx.spec, ctx.store["systems"]
    if ctx.plan:
        return _plan_rows(ctx)
    if "tuned" in spec:
        picks = {f: tuned_pick(exp, systems, f, spec["tuned"])
                 for f in exp.data["tuning"]["fronts"]}
        mel = picks[exp.recipe["baseline"]]
        if mel is None:
            return []
        base = systems[mel]
        return [Row(ctx, p, restrict(systems[p], runs(base)),
                    None if p == mel else base, front=f)
                for f, p in picks.items() if p is not None]
    names = _names(ctx)
    if "schedule" in spec:
        names = [n for n in names if n in exp.grid
                 and exp.grid[n][2] == spec["schedule"]]
    rows = [Row(ctx, n, systems[n]) for n in names if n in systems
            and len(runs(systems[n])) >= spec.get("min_seeds", 1)
            and (not spec.get("timed")
                 or systems[n].get("cpu_minutes_per_run"))]
    if spec.get("order") == "valid":
        rows.sort(key=lambda r: -(seed_stats(r.entry, valid=True)[0]
                                  or seed_stats(r.entry)[0]))
    return rows if len(rows) >= spec.get("min_rows", 1) else []


def render(ctx, rows):
    """Markdown of a spec's rows ("" without rows)."""
    if not rows:
        return ""
    spec, exp = ctx.spec, ctx.exp
    schedule = (spec.get("grid", {}).get("schedules") or [None])[0]
    after = exp.schedules.get(schedule or "", {}).get("after")
    fill = {"label": exp.schedules.get(schedule or "", {}).get("label"),
            "base_label": exp.schedules[after]["label"] if after
            else "12 epochs", "target": pct(ctx.target),
            "baseline": spec.get("pair"),
            **{k: v for k, v in (ctx.plan or {}).items()
               if isinstance(v, str)}}
    columns, cols = exp.data["columns"], []  # (header, alignment, cell)
    for key in spec["columns"]:
        if key in SPEAKER_COLUMNS:
            cell = SPEAKER_COLUMNS[key]
            cols += [(s, "---:", functools.partial(cell, s=s))
                     for s in ctx.speakers]
            continue
        header = spec.get("headers", {}).get(key, columns["headers"][key])
        align = "---" if key in columns["left"] else "---:"
        cols.append((header.format_map(fill), align, COLUMNS[key]))
    heads, aligns, cells = zip(*cols)
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(c(r) for c in cells) + " |" for r in rows]
    return "\n".join(lines)


def specs(exp):
    """Every table spec, ``each`` expanded (one per value, "{each}" set)."""
    out = []
    for spec in exp.data["tables"]:
        text = json.dumps({k: v for k, v in spec.items() if k != "each"})
        out += [json.loads(text.replace("{each}", value))
                for value in spec.get("each", ["{each}"])]
    return out


def all_tables(exp, store, old):
    """``(key, title, markdown)`` per table ("" markdown without rows)."""
    ctxs = [Context(exp, store, old, spec) for spec in specs(exp)]
    return [(c.spec["key"], c.spec["title"], render(c, table_rows(c)))
            for c in ctxs]


def print_tables(exp, store, old):
    """Every non-empty table under its title, as text."""
    return "\n\n".join(f"{title}:\n{text}" for _, title, text
                       in all_tables(exp, store, old) if text)


def fill_blocks(text, tables):
    r"""Replace every ``<!-- study:KEY -->`` block with its table.

    Example
    -------
    >>> text = "Intro\n<!-- study:cpu -->\nold\n<!-- /study:cpu -->\nEnd"
    >>> fill_blocks(text, {"cpu": "| a |"}).splitlines()[1:5]
    ['<!-- study:cpu -->', '', '| a |', '']
    >>> fill_blocks("<!-- study:gone -->", {})
    Traceback (most recent call last):
    ...
    ValueError: block 'gone' has no table spec
    """
    opening, closing = BLOCK.split("{}")
    lines, out = iter(text.split("\n")), []
    for line in lines:
        out.append(line)
        line = line.strip()
        if not (line.startswith(opening) and line.endswith(closing)):
            continue
        key = line[len(opening):-len(closing)].strip()
        if key not in tables:
            raise ValueError(f"block {key!r} has no table spec")
        end = END.format(key)
        # the old table is skipped up to its end marker
        found = next((s for s in lines if s.strip() == end), None)
        if found is None:
            raise ValueError(f"block {key!r} lacks {end}")
        # blank lines keep the markers out of the table (GFM)
        out += ["", *(tables[key] or EMPTY).split("\n"), "", found]
    return "\n".join(out)


def pages(exp):
    """RESULTS.md and the yaml's pages (absolute paths)."""
    return [RESULTS_MD, *(os.path.join(ROOT, p)
                          for p in exp.data.get("pages", []))]


def analysis(exp, store):
    """Derive the results: per system, the plans and the tuned picks."""
    out = {"systems": {}}
    ctx = Context(exp, store, {}, {})
    for name, e in store["systems"].items():
        r = Row(ctx, name, e)
        (mean, std), (vmean, vstd) = seed_stats(e), seed_stats(e, valid=True)
        out["systems"][name] = {
            "seeds": sorted(int(s) for s in runs(e)), "mean": mean,
            "std": std, "valid_mean": vmean, "valid_std": vstd,
            "fold_seed_std": r.spread,
            "pooled_seed_std": st.pooled_seed_std(runs(e)),
            "pooled_valid_seed_std": st.pooled_seed_std(runs(e, True)),
            "baseline": exp.baseline_of(name) if name in exp.grid else None,
            "paired_vs_baseline": r.versus(r.pair),
            "paired_vs_baseline_by_seed": r.versus(r.pair, by_seed=True),
            "paired_vs_baseline_valid": r.versus(r.pair, valid=True)}
    for key in exp.data["plans"]:
        c = Context(exp, store, {}, {"plan": key})
        out[key] = [{"system": r.name, "done": r.done,
                     "test": r.versus(r.pair), "spread": r.spread,
                     "test_by_seed": r.versus(r.pair, by_seed=True),
                     "valid": r.versus(r.pair, valid=True)}
                    for r in table_rows(c)]
    for size in exp.data["sizes"]:
        c = Context(exp, store, {}, {"tuned": size})
        out[f"tuned_{size}"] = {r.front: r.name for r in table_rows(c)}
    return out


def report(exp, store, old, plots=True):
    """Fill every page's blocks and draw the plots; return what it did."""
    tables = {k: t for k, _, t in all_tables(exp, store, old)}
    done = []
    for page in pages(exp):
        with open(page, encoding="utf-8") as f:
            text = f.read()
        if BLOCK.split("{}")[0] in text:
            with open(page, "w", encoding="utf-8") as f:
                f.write(fill_blocks(text, tables))
            done.append(f"filled {page}")
    for kind, spec in exp.data["plots"].items() if plots else ():
        path = os.path.join(HERE, spec["file"])
        done += PLOTS[kind](exp, store["systems"], old, spec, path)
    return done


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return [f"wrote {path}"]


def plot_capacity(exp, systems, old, spec, path):
    """Plot test accuracy (mean ± std over seeds) against parameters."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    fronts = spec["variants"]
    for i, front in enumerate(fronts):
        dodge = 1.0 + 0.04 * (i - (len(fronts) - 1) / 2)
        points = []
        for size, widths in exp.data["sizes"].items():
            e = systems.get(exp.lookup(front, size, spec["schedule"]) or "")
            if e and len(runs(e)) > 1:
                mean, std = seed_stats(e)
                points.append((classifier_parameters(tuple(widths)) * dodge,
                               100 * mean, 100 * std))
        if len(points) > 1:
            xs, ys, es = zip(*points)
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3,
                        color=f"C{i}", label=front)
    ax.set(xscale="log", xlabel="classifier parameters (CompactCNN)",
           ylabel="test accuracy, unseen speaker (%)",
           title="FSDD leave-one-speaker-out: mean ± std over seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_stability(exp, systems, old, spec, path):
    """Plot each front-end's per-speaker seed spread under each source."""
    from matplotlib.figure import Figure

    fronts = [f for f in spec["variants"] if f in systems]
    fig = Figure(figsize=(3.2 * len(fronts), 3.9))
    axes = fig.subplots(1, len(fronts), sharey=True, squeeze=False)
    sources = spec["sources"]
    target = exp.data["plans"]["stability_check"]["target"]
    for ax, front in zip(axes[0], fronts):
        speakers = sorted(st.seed_spread(runs(systems[front])))
        width = 0.8 / len(sources)
        for j, src in enumerate(sources):
            pool = old if src.get("store") == "old_recipe" else systems
            name = (front if src.get("store") else
                    exp.lookup(front, "medium", src.get("schedule")))
            entry = pool.get(name or "")
            if entry is None:
                continue
            spread = st.seed_spread(runs(entry))
            ax.bar([i + (j - (len(sources) - 1) / 2) * width
                    for i in range(len(speakers))],
                   [100 * spread.get(s, float("nan")) for s in speakers],
                   width, label=f"{src['label']} ({len(runs(entry))} seeds)")
        ax.axhline(100 * target, color="k", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(speakers)))
        ax.set_xticklabels(speakers, rotation=45, ha="right", fontsize=8)
        ax.set_title(front, fontsize=10)
        # seed counts differ between front-ends: a legend per panel
        ax.legend(fontsize=6, loc="lower center", bbox_to_anchor=(0.5, 1.1),
                  ncol=2, frameon=False)
    axes[0][0].set_ylabel("std over seeds of test accuracy (points)")
    fig.suptitle("FSDD: seed spread per held-out speaker (dashed: target)",
                 fontsize=10)
    return _save(fig, path)


def plot_movement(exp, systems, old, spec, path):
    """Draw the spec's systems' filters, learned vs initial, side by side.

    Every (seed, fold) whose per-filter movement is stored is drawn
    (:func:`~speechbrain_relevance.analysis.figures.
    plot_learned_vs_initial`); systems without are left out, and nothing
    is drawn without any. Returns what it did.
    """
    from speechbrain_relevance.analysis.figures import plot_learned_vs_initial

    drawn, notes = {}, []
    for name in spec["systems"]:
        folds = [f for m in (systems.get(name, {}).get("filter_movement")
                             or {}).values() if m
                 for f in (m.get("folds") or {}).values()]
        if folds:
            drawn[name] = folds
        else:
            notes.append(f"{spec['file']}: {name} left out (no per-filter "
                         "movement stored)")
    if not drawn:  # one line is enough
        return [f"{spec['file']}: no per-filter movement stored: nothing "
                "drawn"]
    plot_learned_vs_initial(drawn, path, spec.get("title"))
    return [*notes, f"wrote {path} ({', '.join(drawn)})"]


PLOTS = {"capacity": plot_capacity, "stability": plot_stability,
         "movement": plot_movement}
