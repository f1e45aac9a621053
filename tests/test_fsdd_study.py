"""The FSDD front-end study (studies/fsdd_frontends): its statistics, its
store, its runner and its report, which must reproduce every number of
the tables the retired benchmarks/real_audio.py printed."""

import copy
import doctest
import json
import os
import re
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDY = os.path.join(REPO, "studies", "fsdd_frontends")
LEGACY = os.path.join(REPO, "tests", "data", "fsdd_study_legacy_tables.md")
FSDD = os.path.join(REPO, "tests", "data", "fsdd")
sys.path.insert(0, STUDY)
import study  # noqa: E402
import study_report as report  # noqa: E402
import study_stats as st  # noqa: E402

EXP = study.Experiments()


@pytest.fixture(scope="module")
def stored():
    return study.load_store(), study.load_store(report.OLD_RECIPE)["systems"]


@pytest.mark.parametrize("module", [study, report, st])
def test_doctests(module):
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(module, optionflags=flags)
    assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------ the legacy tables

#: Cells that describe a system in words (labels, written from
#: experiments.yaml now): their numbers are not results.
WORDS = {"option", "schedule"}
LABELS = {"system", "front-end", "classifier", "variant validation picks",
          "system (seeds old → new)"}
NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*%?")


def parse_tables(text):
    """Title -> {row key: numeric tokens} of printed tables."""
    tables = {}
    for block in text.strip().split("\n\n"):
        title, head, _, *rows = block.strip().split("\n")
        heads = [h.strip() for h in head.strip("|").split(" | ")]
        parsed = {}
        for row in rows:
            cells = [c.strip() for c in row.strip()[2:-2].split(" | ")]
            assert len(cells) == len(heads), row
            key, numbers = [], []
            for head_, cell in zip(heads, cells):
                if head_ in WORDS:
                    continue
                if head_ in LABELS:
                    names = re.findall(r"`([^`]+)`", cell)
                    key.append(" ".join(names) or cell)
                    # a label's own counts, "(3 → 20 seeds)", are results
                    cell = cell.rsplit("`", 1)[-1] if names else ""
                numbers += NUMBER.findall(cell)
            assert tuple(key) not in parsed, row
            parsed[tuple(key)] = numbers
        tables[title.rstrip(":")] = parsed
    return tables


#: The systems of the old benchmark's tables (its every-system table
#: lists each one with runs): the 60 the migration carried over.
with open(LEGACY, encoding="utf-8") as _f:
    LEGACY_SYSTEMS = set(re.findall(r"`([\w.]+)`", _f.read()))


def test_report_reproduces_every_legacy_table(stored):
    with open(LEGACY, encoding="utf-8") as f:
        legacy = parse_tables(f.read())
    new = parse_tables(report.print_tables(EXP, *stored))
    assert len(legacy) == 23
    # Systems whose first runs came after the migration (issue 31's).
    later = set(stored[0]["systems"]) - LEGACY_SYSTEMS
    for title, rows in legacy.items():
        assert title in new, title
        for key, numbers in rows.items():
            assert new[title].get(key) == numbers, (title, key)
        # A new row names a post-migration system (beside its label).
        added = {k for k in new[title] if k not in rows}
        assert all(later & set(k) for k in added), (title, added)


def test_every_page_block_is_the_stored_runs(stored):
    store, old = stored
    tables = {k: t for k, _, t in report.all_tables(EXP, store, old)}
    found = set()
    for page in report.pages(EXP):
        with open(page, encoding="utf-8") as f:
            text = f.read()
        found |= {k for k in tables if report.BLOCK.format(k) in text}
        assert report.fill_blocks(text, tables) == text, page
    # every table with rows is on some page
    assert {k for k, t in tables.items() if t} <= found
    assert {"headline", "confirmation", "what_learns", "converged"} <= found


def test_a_block_without_its_end_is_named():
    with pytest.raises(ValueError, match="'cpu' lacks"):
        report.fill_blocks("<!-- study:cpu -->\n| a |\n", {"cpu": "| b |"})


# ------------------------------------------------ definitions and store

def test_every_stored_system_keeps_its_definition(stored):
    store, _ = stored
    assert LEGACY_SYSTEMS <= set(store["systems"])
    for name, entry in store["systems"].items():
        study.check_definition(EXP, name, entry)
        # raw per-run values only
        assert set(entry) <= {*study.DEFINITION, *study.PER_SEED}, name
        assert set(entry["filter_movement"]) == set(entry["fold_accuracies"])
    # the issue-31 systems are defined before their runs
    for name in ("relevance_2head_on_mel_small_batch7",
                 "relevance_2head_frozen_batch7", "mel_batch7_24ep",
                 "relevance_2head_flr0.1_batch7"):
        assert name in EXP.grid


def test_an_undefined_system_is_named_on_merge(tmp_path):
    entry = {"hparams": "recipes/FSDD/hparams/mel_baseline.yaml",
             "overrides": ["--n_bands=64"], "classifier_size": "medium",
             "fold_accuracies": {"1": {"a": 0.5}}}
    with pytest.raises(ValueError, match="mel_64 is not in experiments"):
        study.merge_stores({"systems": {}}, {"systems": {"mel_64": entry}},
                           EXP)
    with pytest.raises(ValueError, match="defines"):
        study.merge_stores({"systems": {}}, {"systems": {"mel": entry}}, EXP)
    # through the command line: the store is left as it was
    other, path = tmp_path / "other.json", tmp_path / "runs.json"
    other.write_text(json.dumps({"systems": {"mel": entry}}))
    with pytest.raises(ValueError, match="defines"):
        study.main(["--store", str(path), "merge", str(other)])
    assert study.load_store(str(path)) == {"systems": {}}


def test_seeds_run_elsewhere_merge_into_the_store(stored):
    store, _ = stored
    name = "mel_epochs18"
    entry = store["systems"][name]
    seeds = list(entry["fold_accuracies"])

    def part(keep):
        return {**entry, **{k: {s: v for s, v in entry[k].items()
                                if s in keep} for k in study.PER_SEED}}

    mine = {"systems": {name: part(seeds[:2])}}
    # seed 1 is in both: the same run
    other = {"systems": {name: part([seeds[0], *seeds[2:]])}}
    assert study.merge_stores(mine, other, EXP) == [name]
    assert mine["systems"][name] == entry
    changed = copy.deepcopy(other)
    fold = next(iter(changed["systems"][name]["fold_accuracies"]["1"]))
    changed["systems"][name]["fold_accuracies"]["1"][fold] += 0.01
    with pytest.raises(ValueError, match="seed 1 is in both"):
        study.merge_stores({"systems": {name: part(seeds[:2])}}, changed)


# ------------------------------------------------ statistics

def test_paired_statistics_match_a_hand_computed_example():
    system = {"1": {"a": 0.90, "b": 0.70, "c": 0.80},
              "2": {"a": 0.85, "b": 0.75, "c": 0.60}}
    mel = {"1": {"a": 0.88, "b": 0.71, "c": 0.75},
           "2": {"a": 0.80, "b": 0.70, "c": 0.62},
           "3": {"a": 0.10, "b": 0.10, "c": 0.10}}  # unpaired: ignored
    d = st.paired_difference(system, mel)
    # +.02, -.01, +.05, +.05, +.05, -.02; t(0.975, 5) = 2.570582
    mean = 0.14 / 6
    se = ((0.0084 - 6 * mean**2) / 5) ** 0.5 / 6**0.5
    assert d["n"] == 6 and d["wins"] == 4 and d["losses"] == 2
    assert d["mean"] == pytest.approx(mean)
    assert d["se"] == pytest.approx(se, rel=1e-6)
    assert d["ci95"][0] == pytest.approx(mean - 2.570582 * se, rel=1e-5)
    assert d["ci95"][1] == pytest.approx(mean + 2.570582 * se, rel=1e-5)
    assert st.seed_spread(system)["c"] == pytest.approx(0.1414, abs=1e-4)
    assert st.paired_difference({"1": {"a": 0.5}}, {"1": {"a": 0.4}}) is None


def test_pooled_seed_spread_matches_a_hand_computed_example():
    runs = {"1": {"a": 0.90, "b": 0.70}, "2": {"a": 0.80, "b": 0.74},
            "3": {"a": 0.85, "b": None}}  # b's third run failed
    spread = st.pooled_seed_std(runs)
    assert spread["df"] == 3
    assert spread["std"] == pytest.approx((0.0058 / 3) ** 0.5)
    # chi2(3) quantiles: 0.2158 (2.5%) and 9.3484 (97.5%)
    assert spread["ci95"][0] == pytest.approx((0.0058 / 9.3484) ** 0.5, 1e-4)
    assert spread["ci95"][1] == pytest.approx((0.0058 / 0.2158) ** 0.5, 1e-3)


def test_largest_spread_pass_rate_matches_a_simulation():
    g = torch.Generator().manual_seed(0)
    acc = 0.85 + 0.02 * torch.randn(20000, 6, 5, generator=g)
    simulated = (acc.std(dim=2).amax(dim=1) <= 0.025).double().mean().item()
    rate = st.largest_spread_pass_rate(0.02, target=0.025, seeds=5, folds=6)
    assert rate == pytest.approx(simulated, abs=0.015)
    assert st.largest_spread_pass_rate(0.02, folds=12) < rate
    assert st.largest_spread_pass_rate(0.001) == pytest.approx(1.0)


def test_paired_by_seed_counts_a_seed_once():
    shift = {"1": 0.05, "2": -0.01, "3": 0.03}
    base = {s: {f: 0.8 for f in "abcdef"} for s in shift}
    system = {s: {f: 0.8 + d + 0.001 * i for i, f in enumerate("abcdef")}
              for s, d in shift.items()}
    runs = st.paired_difference(system, base)
    seeds = st.paired_by_seed(system, base)
    assert runs["n"] == 18 and seeds["n"] == 3
    assert seeds["mean"] == pytest.approx(runs["mean"])
    assert runs["ci95"][0] > 0 > seeds["ci95"][0]


# ------------------------------------------------ table rows

def _entry(test, valid=None):
    return {"fold_accuracies": test, "fold_valid_accuracies": valid or test,
            "filter_movement": {}}


def _rows(systems, spec):
    ctx = report.Context(EXP, {"systems": systems}, {}, spec)
    return report.table_rows(ctx)


RUNS = {"1": {"a": 0.80, "b": 0.70}, "2": {"a": 0.84, "b": 0.72},
        "3": {"a": 0.82, "b": 0.71}}


def _shifted(delta, seeds=("1", "2", "3")):
    return {s: {k: v + delta for k, v in RUNS[s].items()} for s in seeds}


def test_each_system_pairs_with_the_same_size_mel():
    systems = {"mel": _entry(RUNS), "mel_small": _entry(_shifted(0.1)),
               "cosgauss_small": _entry(_shifted(0.1)),
               "cosgauss": _entry(_shifted(0.1))}
    rows = {r.name: r for r in _rows(systems, {"rows": "all"})}
    assert rows["mel"].pair is None
    assert rows["cosgauss"].versus(rows["cosgauss"].pair)["mean"] == (
        pytest.approx(0.1))
    assert rows["cosgauss_small"].pair is systems["mel_small"]
    assert rows["cosgauss_small"].versus(rows["cosgauss_small"].pair)[
        "mean"] == pytest.approx(0.0)


def test_scheduled_options_pair_with_the_scheduled_plain_system():
    systems = {"cosgauss": _entry(RUNS), "cosgauss_batch7": _entry(RUNS),
               "mel_batch7": _entry(RUNS),
               "cosgauss_gain_batch7": _entry(_shifted(0.02), RUNS),
               "mel_pcen_batch7": _entry(RUNS, _shifted(0.02)),
               "mel_pcen": _entry(RUNS, _shifted(0.05))}
    spec = next(s for s in report.specs(EXP) if s["key"] == "options_batch7")
    rows = _rows(systems, spec)
    assert [r.name for r in rows] == ["mel_pcen_batch7",
                                      "cosgauss_gain_batch7"]
    assert report.interval(rows[1].versus(rows[1].plain)) == (
        "+2.0 [+2.0, +2.0]")
    assert "cosgauss_gain_batch7" not in report.render(
        report.Context(EXP, {"systems": systems}, {}, spec), _rows(
            systems, {**spec, "select": {"schedule": None,
                                         "options": True}}))
    # the tuned log-mel is chosen among the recipe's variants only (the
    # 14 s mel_pcen, better still, is not one)
    head = next(s for s in report.specs(EXP) if s["key"] == "headline")
    assert [r.name for r in _rows(systems, head)][:2] == [
        "mel_batch7", "mel_pcen_batch7"]


def test_tuned_comparison_pairs_each_pick_with_the_tuned_mel():
    systems = {
        "mel_batch7": _entry(RUNS),
        # better on validation over the seeds both ran: log-mel's pick
        "mel_batch7_reg": _entry(_shifted(0.01, "12"), _shifted(0.02, "12")),
        "relevance_2head_batch7": _entry(_shifted(0.03), _shifted(0.01)),
        # best only through a seed the other lacks: not picked
        "relevance_2head_batch7_reg": _entry(
            _shifted(0.05), {**_shifted(0.0), "4": {"a": 1, "b": 1}}),
    }
    rows = _rows(systems, {"tuned": "medium"})
    assert [(r.front, r.name) for r in rows] == [
        ("mel", "mel_batch7_reg"),
        ("relevance_2head", "relevance_2head_batch7")]
    rel = rows[1]
    # paired with the tuned log-mel on the seeds both have (1 and 2)
    assert sorted(rel.entry["fold_accuracies"]) == ["1", "2"]
    assert rel.versus(rel.pair)["n"] == 4
    assert rel.versus(rel.pair)["mean"] == pytest.approx(0.02)
    assert rel.versus(rel.pair, valid=True)["mean"] == pytest.approx(-0.01)
    assert rows[0].pair is None


def test_the_front_end_rate_is_picked_on_the_seeds_every_rate_ran():
    systems = {
        "mel_batch7": _entry(RUNS),
        # best on validation over seeds 1-2, which all three ran
        "relevance_2head_flr0.01_batch7": _entry(RUNS, _shifted(0.02, "12")),
        # better only through seed 3, which 0.01 lacks: not picked
        "relevance_2head_flr0.03_batch7": _entry(
            RUNS, {**_shifted(0.01, "12"), "3": {"a": 1, "b": 1}}),
        "relevance_2head_flr0.1_batch7": _entry(RUNS, _shifted(-0.05)),
    }
    spec = next(s for s in report.specs(EXP)
                if s["key"] == "what_learns_flr_pick")
    rows = _rows(systems, spec)
    assert [r.name for r in rows] == ["relevance_2head_flr0.01_batch7"]
    # its own runs (all its seeds) against log-mel of its size
    assert rows[0].pair is systems["mel_batch7"]
    assert rows[0].versus(rows[0].pair, valid=True)["mean"] == (
        pytest.approx(0.02))
    del systems["relevance_2head_flr0.01_batch7"]
    assert [r.name for r in _rows(systems, spec)] == [
        "relevance_2head_flr0.03_batch7"]


def test_a_plan_is_judged_on_its_own_seeds():
    systems = {"relevance_2head_batch7": _entry(_shifted(0.05)),
               "mel_batch7": _entry(RUNS)}
    spec = next(s for s in report.specs(EXP) if s["key"] == "confirmation")
    ctx = report.Context(EXP, {"systems": systems}, {}, spec)
    # none of the planned seeds (11-20) ran: no verdict
    (row,) = report.table_rows(ctx)
    assert row.done == [] and row.versus(row.pair) is None
    assert report.COLUMNS["verdict"](row) == "not complete"
    later = {k: {str(int(s) + 10): f for s, f in e["fold_accuracies"].items()}
             for k, e in systems.items()}
    ctx.store = {"systems": {k: _entry(v) for k, v in later.items()}}
    (row,) = report.table_rows(ctx)
    assert row.done == [11, 12, 13]
    assert report.COLUMNS["verdict"](row) == "not complete"
    assert report.COLUMNS["plan_seeds"](row) == "11-20 (3 of 10 run)"


# ------------------------------------------------ runner

def test_progress_lines_on_a_fake_clock():
    now = [100.0]
    progress = study.Progress(folds=6, runs=2, clock=lambda: now[0])
    now[0] += 120
    line = progress.line("fold", "mel_batch7 seed 3 theo 90.0%", 120)
    assert line == ("fold 1/6: mel_batch7 seed 3 theo 90.0% (2.0 min); "
                    "elapsed 2.0 min, about 10.0 min left")
    now[0] += 240
    progress.line("fold", "mel_batch7 seed 3 lucas 80.0%", 240)
    now[0] += 60
    line = progress.line("run", "mel_batch7 seed 3 85.0% over 2 folds",
                         360)
    # 2 folds in 7 minutes: 7 / 2 x the 4 left
    assert line.endswith("elapsed 7.0 min, about 14.0 min left")
    assert line.startswith("run 1/2: mel_batch7 seed 3 85.0% over 2 folds")
    for _ in range(4):
        line = progress.line("fold", "mel_batch7 seed 4 x 50.0%", 1)
    assert line.endswith("elapsed 7.0 min")  # nothing left


def test_a_system_added_as_one_yaml_line_runs(tmp_path, capsys):
    # The smoke: one new line in a copy of experiments.yaml, one seed, two
    # folds of one epoch on the vendored FSDD subset.
    with open(study.EXPERIMENTS, encoding="utf-8") as f:
        text = f.read()
    yaml_path = tmp_path / "experiments.yaml"
    yaml_path.write_text(text.replace(
        "\nsystems:\n", "\nsystems:\n  smoke_mel: [mel]\n"))
    store = tmp_path / "runs.json"
    args = ["--experiments", str(yaml_path), "--store", str(store), "run",
            "--systems", "smoke_*", "--seeds", "1", "--jobs", "1",
            f"--data_folder={FSDD}", f"--runs={tmp_path / 'runs'}",
            "--folds", "george", "theo", "--extra=--number_of_epochs=1",
            "--extra=--n_bands=8", "--extra=--cnn_channels=[4]",
            "--extra=--noprogressbar"]
    assert study.main(args) == 0
    out = capsys.readouterr().out
    assert "fold 2/2: smoke_mel seed 1 theo" in out
    assert "run 1/1: smoke_mel seed 1" in out
    entry = study.load_store(str(store))["systems"]["smoke_mel"]
    assert entry["overrides"] == []
    assert set(entry["fold_accuracies"]["1"]) == {"george", "theo"}
    assert entry["filter_movement"] == {"1": None}  # fixed mel filters
    assert entry["cpu_minutes_per_run"]["1"] > 0
    # resumable: a second call finds the run stored and trains nothing
    assert study.main(args) == 0
    assert "0 runs to do, 0 folds to train" in capsys.readouterr().out
    assert study.load_store(str(store))["systems"]["smoke_mel"] == entry
    # a fold resumed from its checkpoint is not timed, nor is its run
    fold = tmp_path / "runs" / "smoke_mel" / "1" / "fold_george"
    (fold / "test_results.json").unlink()
    (fold / study.TIMING).unlink()
    store.unlink()
    assert study.main(args) == 0
    assert "0 runs to do" not in capsys.readouterr().out
    resumed = study.load_store(str(store))["systems"]["smoke_mel"]
    assert not (fold / study.TIMING).exists()
    assert "cpu_minutes_per_run" not in resumed
    assert resumed["fold_accuracies"] == entry["fold_accuracies"]


# ------------------------------------------------ filter movement (issue 31)

@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """One trained fold of a learned and of a frozen Cos-Gauss bank."""
    tmp = tmp_path_factory.mktemp("moved")
    with open(study.EXPERIMENTS, encoding="utf-8") as f:
        text = f.read()
    yaml_path = tmp / "experiments.yaml"
    yaml_path.write_text(text.replace("\nsystems:\n", (
        "\nsystems:\n  smoke_rel: [relevance_2head]\n"
        "  smoke_frozen: [relevance_2head_frozen]\n")))
    head = ["--experiments", str(yaml_path), "--store"]
    run = ["run", "--systems", "smoke_rel", "smoke_frozen", "--seeds", "1",
           "--jobs", "1", f"--runs={tmp / 'runs'}", "--folds", "george"]
    assert study.main([*head, str(tmp / "runs.json"), *run,
                       f"--data_folder={FSDD}", "--extra=--number_of_epochs=1",
                       "--extra=--n_bands=8", "--extra=--cnn_channels=[4]",
                       "--extra=--noprogressbar"]) == 0
    return tmp, head, run


def test_a_run_stores_each_folds_filter_movement(moved):
    tmp, _, _ = moved
    systems = study.load_store(str(tmp / "runs.json"))["systems"]
    learned = systems["smoke_rel"]["filter_movement"]["1"]
    fold = learned["folds"]["george"]
    assert set(fold) == {*study.MOVEMENT, *study.PER_FILTER}
    assert all(len(fold[k]) == 8 for k in study.PER_FILTER)
    assert fold["mean_abs_center_shift_hz"] > 0
    assert fold["mean_response_distance"] > 0
    # one fold: the seed's means are the fold's
    assert {k: learned[k] for k in study.MOVEMENT} == {
        k: fold[k] for k in study.MOVEMENT}
    # a frozen bank is a learnable one that moved exactly 0
    frozen = systems["smoke_frozen"]["filter_movement"]["1"]
    fold = frozen["folds"]["george"]
    assert all(frozen[k] == 0.0 for k in study.MOVEMENT)
    assert fold["center_hz"] == fold["center_hz_initial"]
    assert set(fold["center_shift_bands"]) == {0.0}
    # a per-filter list on one line of runs.json
    assert '"center_shift_bands": [0.0, 0.0, ' in (
        tmp / "runs.json").read_text()


def test_collect_adds_the_movement_to_old_runs(moved):
    tmp, head, run = moved
    systems = study.load_store(str(tmp / "runs.json"))["systems"]
    # as the old runner's JSON, imported: four summaries per seed, no folds
    old = {name: {**e, "filter_movement": {"1": {
        k: e["filter_movement"]["1"][k] for k in study.MOVEMENT[:4]}}}
        for name, e in systems.items()}
    path = tmp / "old_runs.json"
    study.save_store({"systems": old}, str(path))
    # the old runner's folders: not timed fold by fold
    for timing in (tmp / "runs").glob(f"*/1/fold_george/{study.TIMING}"):
        timing.unlink()
    assert study.main([*head, str(path), *run, "--collect"]) == 0
    # each seed's per-fold movement replaces the summaries; CPU time kept
    assert study.load_store(str(path))["systems"] == systems
    # and into an empty store: the runs without their CPU time
    path = tmp / "collected.json"
    assert study.main([*head, str(path), *run, "--collect"]) == 0
    collected = study.load_store(str(path))["systems"]
    for name, entry in systems.items():
        assert collected[name] == {k: v for k, v in entry.items()
                                   if "minutes" not in k}


def _movement_entry(shift):
    """A store entry of two seeds whose filters all moved by ``shift``."""
    from speechbrain_relevance.analysis.movement import filter_movement

    hz = [200.0 * k for k in range(1, 9)]
    m = filter_movement({"center_hz": hz},
                        {"center_hz": [h + shift for h in hz]})
    fold = {**{k: m[k] for k in study.MOVEMENT},
            **{k: m[k] for k in study.PER_FILTER}}
    return {**_entry(RUNS), "filter_movement": {
        s: study.seed_movement({"a": fold, "b": fold}) for s in RUNS}}


def test_the_movement_figure_draws_the_systems_with_per_filter_data(
        tmp_path):
    spec = {**EXP.data["plots"]["movement"], "file": "m.png"}
    path = str(tmp_path / "m.png")
    legacy = {"relevance_2head_batch7": {**_entry(RUNS), "filter_movement": {
        "1": {"mean_abs_center_shift_hz": 12.0}}}}
    lines = report.plot_movement(EXP, legacy, {}, spec, path)
    assert lines[-1] == "m.png: no per-filter movement stored: nothing drawn"
    assert not os.path.exists(path)
    systems = {**legacy, "relevance_2head_frozen_batch7": _movement_entry(0.0),
               "relevance_2head_flr0.1_batch7": _movement_entry(30.0)}
    lines = report.plot_movement(EXP, systems, {}, spec, path)
    assert "m.png: relevance_2head_batch7 left out (no per-filter movement " \
        "stored)" in lines
    assert lines[-1] == (f"wrote {path} (relevance_2head_frozen_batch7, "
                         "relevance_2head_flr0.1_batch7)")
    assert os.path.getsize(path) > 0
    # the table's movement columns, where stored
    spec = next(s for s in report.specs(EXP) if s["key"] == "what_learns")
    ctx = report.Context(EXP, {"systems": systems}, {}, spec)
    rows = {r.name: r for r in report.table_rows(ctx)}
    moved = systems["relevance_2head_flr0.1_batch7"]["filter_movement"]
    bands = moved["1"]["mean_abs_center_shift_bands"]
    cells = [report.COLUMNS[c](rows["relevance_2head_flr0.1_batch7"])
             for c in ("shift", "shift_bands", "response_distance")]
    assert cells == ["30.0", f"{bands:.3f}", "-"] and bands > 0
    assert [report.COLUMNS[c](rows["relevance_2head_batch7"])
            for c in ("shift", "shift_bands")] == ["12.0", "-"]
