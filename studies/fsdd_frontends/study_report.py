r"""The FSDD study's report: tables from specs, analysis.json, plots.

One table writer serves every table: a spec of ``experiments.yaml``
names its rows (systems) and columns (keys of :data:`COLUMNS`); each row
holds a system's runs and those it is compared with (its ``pair``, by
default log-mel of the same size and schedule; the ``plain`` system
without its option; the ``short`` schedule it changes; its ``old`` recipe
runs). Blocks ``<!-- study:KEY -->`` ... ``<!-- /study:KEY -->`` of
RESULTS.md and of the yaml's pages hold the tables, never edited by hand.

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
import study  # noqa: E402
import study_stats as st  # noqa: E402

RESULTS_MD = os.path.join(HERE, "RESULTS.md")
ANALYSIS = os.path.join(HERE, "results", "analysis.json")
OLD_RECIPE = os.path.join(HERE, "results", "old_recipe.json")
BLOCK, END = "<!-- study:{} -->", "<!-- /study:{} -->"
EMPTY = "No runs yet."


def pct(value):
    """Points with one decimal, or ``-``.

    Example
    -------
    >>> pct(0.8534), pct(None)
    ('85.3', '-')
    """
    return "-" if value is None else f"{100 * value:.1f}"


def pm(mean_std):
    """``mean ± std`` in points (the mean alone without a std)."""
    mean, std = mean_std
    return pct(mean) if std is None else f"{pct(mean)} ± {pct(std)}"


def interval(paired):
    """``+1.2 [-0.3, +2.7]`` in points, or ``-``.

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
    """``wins/n`` or ``-``."""
    return f"{paired['wins']}/{paired['n']}" if paired else "-"


def pooled_cell(pooled):
    """``std [lo, hi]`` in points, or ``-``.

    Example
    -------
    >>> pooled_cell({"std": 0.02, "ci95": [0.015, 0.03]})
    '2.0 [1.5, 3.0]'
    """
    if not pooled:
        return "-"
    lo, hi = pooled["ci95"]
    return f"{pct(pooled['std'])} [{pct(lo)}, {pct(hi)}]"


def restrict(entry, seeds):
    """Return an entry with only the runs of some seeds."""
    if entry is None:
        return None
    out = dict(entry)
    for key in (*study.PER_SEED, "valid_accuracies"):
        if key in entry:
            out[key] = st.only_seeds(entry[key], seeds)
    return out


def runs(entry, valid=False):
    """Test (or validation) runs of an entry: seed -> fold -> accuracy."""
    key = "fold_valid_accuracies" if valid else "fold_accuracies"
    return (entry or {}).get(key) or {}


def test_stats(entry):
    """Mean and std over seeds of the per-seed test means."""
    return st.mean_std(st.seed_means(runs(entry)))


def valid_stats(entry):
    """Return :func:`test_stats` on validation.

    The oldest runs kept only each seed's mean.
    """
    if runs(entry, True):
        return st.mean_std(st.seed_means(runs(entry, True)))
    return st.mean_std(list((entry.get("valid_accuracies") or {}).values()))


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
        if other is None:
            return None
        fn = st.paired_by_seed if by_seed else st.paired_difference
        return fn(runs(self.entry, valid), runs(other, valid))


def _speaker_columns(cell):
    """Make a column per test speaker (expanded by :func:`render`)."""
    return ("speakers", cell)


def _cpu(e):
    cpu = list((e or {}).get("cpu_minutes_per_run", {}).values())
    return f"{min(cpu):.1f}-{max(cpu):.1f}" if cpu else "-"


def _shift(e):
    vals = [m["mean_abs_center_shift_hz"]
            for m in (e.get("filter_movement") or {}).values()
            if m and m.get("mean_abs_center_shift_hz") is not None]
    return f"{statistics.fmean(vals):.1f}" if vals else "-"


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
    target = r.ctx.target
    if len(r.done) < len(r.ctx.plan["seeds"]):
        return "not complete"
    above = sum(v > target for v in r.spread.values())
    return "yes" if not above else (
        f"no: {above} speaker{'s' if above > 1 else ''} above "
        f"{100 * target:.1f}")


def _pass_rate(r):
    pooled = st.pooled_seed_std(runs(r.entry))
    if not pooled:
        return "-"
    rate = st.largest_spread_pass_rate(
        pooled["std"], r.ctx.target, len(runs(r.entry)),
        len(r.ctx.speakers))
    return f"{100 * rate:.0f}%" if rate >= 0.005 else "<1%"


def _old_new(r, cell):
    return f"{cell(r.old)} → {cell(r.entry)}"


def _largest(e):
    return pct(max(st.seed_spread(runs(e)).values(), default=None))


#: Column key -> (header, left-aligned, cell function of a :class:`Row`).
#: Headers may use {label}, {base_label}, {target}, {system}, {baseline}.
COLUMNS = {
    "system": ("system", 1, lambda r: f"`{r.name}`"),
    "system_short": ("system", 1, lambda r: (
        f"{r.ctx.exp.describe(r.name, False)} (`{r.name}`)")),
    "system_long": ("system", 1, lambda r: (
        f"{r.ctx.exp.describe(r.name)} (`{r.name}`)")),
    "system_seeds": ("system", 1, lambda r: (
        f"`{r.name}` ({len(runs(r.entry))} seeds)")),
    "system_old_new": ("system (seeds old → new)", 1, lambda r: (
        f"`{r.name}` ({len(runs(r.old))} → {len(runs(r.entry))} seeds)")),
    "description": ("description", 1, lambda r: r.ctx.exp.describe(r.name)),
    "front": ("front-end", 1, lambda r: f"`{r.variant}`"),
    "front_name": ("front-end", 1, lambda r: (
        r.ctx.exp.data["frontends"][r.front]["name"])),
    "pick": ("variant validation picks", 1, lambda r: f"`{r.name}`"),
    "classifier": ("classifier", 1, lambda r: (
        f"{r.size} {r.ctx.exp.data['sizes'][r.size]}")),
    "parameters": ("parameters", 0, lambda r: (
        f"{classifier_parameters(tuple(r.ctx.exp.data['sizes'][r.size])):,}"
    )),
    "test": ("test acc. (%)", 0, lambda r: pm(test_stats(r.entry))),
    "short_test": ("test acc. {base_label} (%)", 0,
                   lambda r: pm(test_stats(r.short))),
    "run_mean": ("test acc. (%)", 0, lambda r: pct(st.run_mean(
        runs(r.entry)))),
    "pair_mean": ("baseline (%)", 0, lambda r: pct(st.run_mean(
        runs(r.pair)))),
    "vs": ("test vs log-mel (points, 95% CI)", 0,
           lambda r: interval(r.versus(r.pair))),
    "won": ("runs won", 0, lambda r: won(r.versus(r.pair))),
    "by_seed": ("over seeds (95% CI)", 0,
                lambda r: interval(r.versus(r.pair, by_seed=True))),
    "won_by_seed": ("seeds won", 0,
                    lambda r: won(r.versus(r.pair, by_seed=True))),
    "valid": ("valid acc. (%)", 0, lambda r: pm(valid_stats(r.entry))),
    "valid_vs": ("valid vs log-mel (points, 95% CI)", 0,
                 lambda r: interval(r.versus(r.pair, valid=True))),
    "vs_plain": ("test vs the system without the option (points, 95% "
                 "CI)", 0, lambda r: interval(r.versus(r.plain))),
    "valid_vs_plain": ("valid vs the system without the option (points, "
                       "95% CI)", 0,
                       lambda r: interval(r.versus(r.plain, valid=True))),
    "gain": ("gain from {label} (points, 95% CI)", 0,
             lambda r: interval(r.versus(r.short or {}))),
    "max_std": ("max speaker std over seeds", 0,
                lambda r: _largest(r.entry)),
    "largest": ("largest", 0, lambda r: f"**{_largest(r.entry)}**"),
    "pooled": ("seed spread pooled over test speakers [95% CI]", 0,
               lambda r: pooled_cell(st.pooled_seed_std(runs(r.entry)))),
    "pooled_valid": ("seed spread pooled over validation speakers [95% "
                     "CI]", 0, lambda r: pooled_cell(
                         st.pooled_seed_std(runs(r.entry, True)))),
    "seeds": ("seeds", 0, lambda r: str(len(runs(r.entry)))),
    "shift": ("filter shift (Hz)", 0, lambda r: _shift(r.entry)),
    "cpu": ("CPU minutes per run", 0, lambda r: _cpu(r.entry)),
    "timed": ("runs timed", 0, lambda r: str(
        len(r.entry.get("cpu_minutes_per_run") or {}))),
    "plan_seeds": ("seeds (planned)", 1, _span),
    "verdict": ("verdict", 1, _verdict),
    "within_target": ("every speaker within {target}", 1, _within),
    "speakers_std": _speaker_columns(lambda r, s: pct(r.spread.get(s))),
    "speakers_interval": _speaker_columns(lambda r, s: pooled_cell(
        st.pooled_seed_std({seed: {s: f[s]} for seed, f
                            in runs(r.entry).items() if s in f}))),
    "speakers_old_new": _speaker_columns(lambda r, s: _old_new(
        r, lambda e: pct(st.seed_spread(runs(e)).get(s)))),
    "largest_old_new": ("largest", 0, lambda r: (
        f"**{_old_new(r, _largest)}**")),
    "pooled_old_new": ("pooled over speakers [95% CI]", 0,
                       lambda r: _old_new(r, lambda e: pooled_cell(
                           st.pooled_seed_std(runs(e))))),
    "pass_rate": ("largest ≤ {target} at the pooled spread", 0, _pass_rate),
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
    return st.tuned_pick({n: runs(systems[n], True) for n in names
                          if n in systems})


def table_rows(ctx):
    """Return the rows a spec names, with runs, in its order."""
    exp, spec, systems = ctx.exp, ctx.spec, ctx.store["systems"]
    if ctx.plan and "system" in ctx.plan:  # a registered comparison
        e, b = (systems.get(ctx.plan[k]) for k in ("system", "baseline"))
        if e is None or b is None:
            return []
        e, b = (restrict(x, ctx.plan["seeds"]) for x in (e, b))
        done = sorted(int(s) for s in set(runs(e)) & set(runs(b)))
        return [Row(ctx, ctx.plan["system"], e, b, done=done)]
    if ctx.plan:  # a registered spread check
        rows = [Row(ctx, n, restrict(systems[n], ctx.plan["seeds"]),
                    done=None) for n in ctx.plan["systems"] if n in systems]
        for r in rows:
            r.done = sorted(int(s) for s in runs(r.entry))
        return rows if any(r.done for r in rows) else []
    if "tuned" in spec:
        size = spec["tuned"]
        picks = {f: tuned_pick(exp, systems, f, size)
                 for f in exp.data["tuning"]["fronts"]}
        mel = picks[exp.recipe["baseline"]]
        if mel is None:
            return []
        base = systems[mel]
        return [Row(ctx, p, restrict(systems[p], runs(base)),
                    None if p == mel else base, front=f)
                for f, p in picks.items() if p is not None]
    if "grid" in spec:
        g = spec["grid"]
        names = [exp.lookup(v, size, s) for v in g["variants"]
                 for size in g.get("sizes", ["medium"])
                 for s in g.get("schedules", [None])]
    elif "select" in spec:
        sel = spec["select"]
        names = [n for n, (_, _, s) in exp.grid.items()
                 if s == sel["schedule"] and (not sel.get("options") or
                                              exp.plain_of(n) in systems)]
    elif spec["rows"] == "all":
        names = list(systems)
    else:
        names = []
        for item in spec["rows"]:
            if isinstance(item, dict):
                pick = tuned_pick(exp, systems, item["tuned"],
                                  item.get("size", "medium"))
                names += [pick] if pick else []
            else:
                names += exp.match([item]) or [item]
        names = list(dict.fromkeys(names))
    if "schedule" in spec:
        names = [n for n in names if n in exp.grid
                 and exp.grid[n][2] == spec["schedule"]]
    rows = [Row(ctx, n, systems[n]) for n in names
            if n in systems and len(runs(systems[n])) >= spec.get(
                "min_seeds", 1)
            and (not spec.get("timed") or systems[n].get(
                "cpu_minutes_per_run"))]
    if spec.get("order") == "valid":
        rows.sort(key=lambda r: -(valid_stats(r.entry)[0]
                                  or test_stats(r.entry)[0]))
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
            **{k: v for k, v in (ctx.plan or {}).items()
               if isinstance(v, str)}}
    heads, aligns, cells = [], [], []
    for key in spec["columns"]:
        column = COLUMNS[key]
        if column[0] == "speakers":
            for spk in ctx.speakers:
                heads.append(spk)
                aligns.append("---:")
                cells.append(functools.partial(column[1], s=spk))
            continue
        header, left, cell = column
        heads.append(spec.get("headers", {}).get(key, header)
                     .format_map(fill))
        aligns.append("---" if left else "---:")
        cells.append(cell)
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(c(r) for c in cells) + " |" for r in rows]
    return "\n".join(lines)


def _each(spec):
    """Return the specs a spec stands for (one per ``each`` value)."""
    if "each" not in spec:
        return [spec]
    text = json.dumps({k: v for k, v in spec.items() if k != "each"})
    return [json.loads(text.replace("{each}", value))
            for value in spec["each"]]


def specs(exp):
    """Every table spec, ``each`` expanded."""
    return [s for spec in exp.data["tables"] for s in _each(spec)]


def all_tables(exp, store, old):
    """``(key, title, markdown)`` per table ("" markdown without rows)."""
    out = []
    for spec in specs(exp):
        ctx = Context(exp, store, old, spec)
        out.append((spec["key"], spec["title"], render(ctx,
                                                       table_rows(ctx))))
    return out


def load_old():
    """Read the old recipe's runs (for the stability table and plot)."""
    return study.load_store(OLD_RECIPE)["systems"]


def print_tables(exp, store_path=study.STORE):
    """Every non-empty table under its title, as text."""
    tables = all_tables(exp, study.load_store(store_path), load_old())
    return "\n\n".join(f"{title}:\n{text}" for _, title, text in tables
                       if text)


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
    >>> fill_blocks("<!-- study:cpu -->\n| a |", {"cpu": "| b |"})
    Traceback (most recent call last):
    ...
    ValueError: block 'cpu' lacks <!-- /study:cpu -->
    """
    opening, closing = BLOCK.split("{}")
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        line = lines[i].strip()
        out.append(lines[i])
        i += 1
        if not (line.startswith(opening) and line.endswith(closing)):
            continue
        key = line[len(opening):-len(closing)].strip()
        if key not in tables:
            raise ValueError(f"block {key!r} has no table spec")
        end = END.format(key)
        j = next((k for k in range(i, len(lines))
                  if lines[k].strip() == end), None)
        if j is None:
            raise ValueError(f"block {key!r} lacks {end}")
        # blank lines keep the markers out of the table (GFM)
        out += ["", *(tables[key] or EMPTY).split("\n"), ""]
        i = j
    return "\n".join(out)


def pages(exp):
    """RESULTS.md and the yaml's pages (absolute paths)."""
    return [RESULTS_MD, *(os.path.join(study.ROOT, p)
                          for p in exp.data.get("pages", []))]


def analysis(exp, store):
    """Derive the results: per system, the plans and the tuned picks."""
    systems, out = store["systems"], {"systems": {}}
    ctx = Context(exp, store, {}, {})
    for name, e in systems.items():
        r = Row(ctx, name, e)
        (mean, std), (vmean, vstd) = test_stats(e), valid_stats(e)
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


def report(exp, store_path=study.STORE, plots=True):
    """Write analysis.json, fill every page's blocks, draw the plots."""
    store, old = study.load_store(store_path), load_old()
    tables = {k: t for k, _, t in all_tables(exp, store, old)}
    done = [f"wrote {ANALYSIS}"]
    study.save_store(analysis(exp, store), ANALYSIS)
    for page in pages(exp):
        with open(page, encoding="utf-8") as f:
            text = f.read()
        if BLOCK.split("{}")[0] in text:
            with open(page, "w", encoding="utf-8") as f:
                f.write(fill_blocks(text, tables))
            done.append(f"filled {page}")
    if plots:
        for kind, spec in exp.data["plots"].items():
            path = os.path.join(HERE, spec["file"])
            (plot_capacity if kind == "capacity" else plot_stability)(
                exp, store["systems"], old, spec, path)
            done.append(f"wrote {path}")
    return done


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(*args, **kwargs)


def plot_capacity(exp, systems, old, spec, path):
    """Plot test accuracy against classifier parameters.

    A line per front-end; error bars: std over seeds; the front-ends
    dodged along the log axis.
    """
    plt, fig, ax = _figure(figsize=(6, 4))
    fronts = spec["variants"]
    for i, front in enumerate(fronts):
        dodge = 1.0 + 0.04 * (i - (len(fronts) - 1) / 2)
        points = []
        for size, widths in exp.data["sizes"].items():
            e = systems.get(exp.lookup(front, size, spec["schedule"]) or "")
            if e and len(runs(e)) > 1:
                mean, std = test_stats(e)
                points.append((classifier_parameters(tuple(widths)) * dodge,
                               100 * mean, 100 * std))
        if len(points) > 1:
            xs, ys, es = zip(*points)
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3,
                        color=f"C{i}", label=front)
    ax.set_xscale("log")
    ax.set_xlabel("classifier parameters (CompactCNN)")
    ax.set_ylabel("test accuracy, unseen speaker (%)")
    ax.set_title("FSDD leave-one-speaker-out: mean ± std over seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_stability(exp, systems, old, spec, path):
    """Plot each front-end's per-speaker seed spread under each source.

    A source is a recipe or schedule; a panel per front-end; dashed: the
    target.
    """
    fronts = [f for f in spec["variants"] if f in systems]
    plt, fig, axes = _figure(1, len(fronts), figsize=(
        3.2 * len(fronts), 3.9), sharey=True, squeeze=False)
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

