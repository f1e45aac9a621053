r"""Figures and tables of the paper for trained runs or exported models.

Usage::

    python -m speechbrain_relevance.analysis <run_or_model_folder> \
        --out <dir> [--audio clip.wav ...] [--sinc <sincnet_run>] \
        [--compare <other_run> ...]

Writes into ``--out``:

* ``center_frequencies.png`` / ``.json``: Figure 2, the learnt centre
  frequencies against mel (and the ``--sinc`` run's SincNet filters);
* ``filter_responses.png`` (and ``filter_responses_sinc.png``): the learnt
  filters' power responses;
* ``filter_movement.md`` / ``.json``: how far every filter's centre
  frequency and bandwidth moved from their initial values;
* ``representation_<stem>.png`` per ``--audio`` clip: Figure 3;
* ``tables.md`` / ``tables.json``: class-wise and per-device accuracy of
  the analysed run, the ``--sinc`` run and the ``--compare`` runs (in
  that order), and their parameter counts;
* ``parameters.json``: parameter counts of the analysed model (those of
  the other runs under ``"others"``). ``total`` counts every module of the
  model once, an embedding model included (``other_modules``).

Bad input (a missing folder, a folder without a model) ends with one line
on stderr and exit status 1.

What does not apply (no learnable filterbank in a log-mel baseline, no
relevance masks without relevance heads, no ``test_results.json`` in an
exported model folder) is skipped with a message.

Authors
 * speechbrain-relevance developers
"""

import json
import os
import sys

from speechbrain_relevance.analysis import figures as F
from speechbrain_relevance.analysis import load_trained
from speechbrain_relevance.analysis import tables as T
from speechbrain_relevance.analysis.movement import (
    filter_movement,
    movement_markdown,
)
from speechbrain_relevance.cli import ArgumentParser, command_name, run_main

MODULE = "speechbrain_relevance.analysis"
SCRIPT = "sb-relevance-analysis"


def parse_args(argv=None):
    """Command-line options.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        The options.
    """
    parser = ArgumentParser(
        prog=command_name(SCRIPT, MODULE),
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("folder", help="recipe run folder or model folder")
    parser.add_argument(
        "--out", help="output folder (default: <folder>/analysis)"
    )
    parser.add_argument(
        "--audio", nargs="+", default=[], help="clips for Figure 3"
    )
    parser.add_argument(
        "--sinc", help="run or model folder of a learnt SincNet filterbank"
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        default=[],
        help="other run folders for the accuracy and parameter tables",
    )
    parser.add_argument(
        "--results_prefix",
        default="test_results",
        help="results file name in the run folders, without .json",
    )
    parser.add_argument("--device", default="cpu", help="torch device")
    return parser.parse_args(argv)


def _say(message):
    print(message, flush=True)


def _unique_names(models):
    """Row names, with the folder added where two runs share a name."""
    names = [m.name for m in models]
    return [
        f"{name} [{os.path.basename(m.folder)}]"
        if names.count(name) > 1
        else name
        for name, m in zip(names, models)
    ]


def write_figure2(model, sinc, out):
    """Figure 2 files; returns the paths written."""
    written = []
    try:
        curves = F.center_frequency_curves(
            model.compute_features, sinc.compute_features if sinc else None
        )
    except ValueError as e:
        _say(f"Skipping center_frequencies.png: {e}")
        curves = None
    if curves is not None:
        path = os.path.join(out, "center_frequencies.png")
        F.plot_center_frequencies(
            curves, path, title="Centre frequencies of the filterbanks"
        )
        data = os.path.join(out, "center_frequencies.json")
        with open(data, "w", encoding="utf-8") as f:
            json.dump({k: v.tolist() for k, v in curves.items()}, f, indent=1)
        written += [path, data]

    written += write_movement(model, out)
    for trained, fname in (
        (model, "filter_responses.png"),
        (sinc, "filter_responses_sinc.png"),
    ):
        if trained is None:
            continue
        bank = trained.compute_features
        if not F.is_learnable_filterbank(bank):
            _say(
                f"Skipping {fname}: {trained.name} has no learnable "
                f"filterbank (front-end {type(bank).__name__})"
            )
            continue
        hz, db = F.filter_responses(bank)
        path = os.path.join(out, fname)
        F.plot_filter_responses(
            hz, db, path, title=f"{F.filterbank_label(bank)} filters"
        )
        written.append(path)
    return written


def write_movement(model, out):
    """Filter movement since initialisation; returns the paths written."""
    bank, initial = model.compute_features, model.initial_compute_features
    if initial is None or not F.is_learnable_filterbank(bank):
        _say("Skipping filter_movement: no learnable filterbank")
        return []
    movement = filter_movement(initial, bank)
    md = os.path.join(out, "filter_movement.md")
    with open(md, "w", encoding="utf-8") as f:
        f.write(f"# Filter movement since initialisation: {model.name}\n\n")
        f.write(movement_markdown(movement))
    data = os.path.join(out, "filter_movement.json")
    with open(data, "w", encoding="utf-8") as f:
        json.dump(movement, f, indent=1)
    _say(
        "Filters moved by "
        f"{movement['mean_abs_center_shift_hz']:.1f} Hz on average "
        f"(max {movement['max_abs_center_shift_hz']:.1f} Hz)"
    )
    return [md, data]


def write_figure3(model, audio_files, out):
    """Figure 3 per clip; returns the paths written."""
    from speechbrain_relevance.data.audio import load_audio, peak_normalize

    if audio_files and model.relevance is None:
        _say(
            f"{model.name} has no relevance heads: Figure 3 without mask "
            "panels (the last panel is the min-max scaled representation)"
        )
    if not audio_files:
        _say("No --audio given: skipping Figure 3")
    written = []
    for audio in audio_files:
        policy = model.pipeline.clip_policy
        if policy is not None:
            wav = policy.load(audio)
        else:
            wav = peak_normalize(
                load_audio(audio, sample_rate=model.sample_rate)
            )
        panels = F.representation_panels(
            model.pipeline, wav, model.sample_rate
        )
        stem = os.path.splitext(os.path.basename(audio))[0]
        path = os.path.join(out, f"representation_{stem}.png")
        F.plot_representation(
            panels, path, title=f"{os.path.basename(audio)} ({model.name})"
        )
        written.append(path)
    return written


def parameter_report(model):
    """Parameter counts of every module of a loaded model.

    :func:`~speechbrain_relevance.analysis.tables.count_parameters` splits
    the front-end, relevance and classifier; the model's other modules
    (the ``embedding_model`` of an ECAPA swap) are added under
    ``other_modules``, and ``total`` counts each parameter of the whole
    model once (modules may share sub-modules).

    Arguments
    ---------
    model : speechbrain_relevance.analysis.TrainedModel
        The loaded model.

    Returns
    -------
    dict
        The report of ``count_parameters`` with ``other_modules`` (name to
        ``module``, ``parameters``, ``trainable``) and the whole model's
        ``total``; ``front_end_percent`` is then the front-end over the
        rest of the model.
    """
    report = T.count_parameters(
        model.compute_features, model.relevance, model.classifier
    )
    report["other_modules"] = {
        name: {
            "module": type(module).__name__,
            "parameters": sum(p.numel() for p in module.parameters()),
            "trainable": sum(
                p.numel() for p in module.parameters() if p.requires_grad
            ),
        }
        for name, module in model.other_modules.items()
    }
    unique = {
        id(p): p
        for module in model.all_modules().values()
        for p in module.parameters()
    }
    report["total"] = sum(p.numel() for p in unique.values())
    rest = report["total"] - report["front_end"]
    report["front_end_percent"] = (
        100 * report["front_end"] / rest if rest else None
    )
    return report


def write_tables(models, out, prefix="test_results"):
    """Accuracy and parameter tables; returns the paths written."""
    names = _unique_names(models)
    runs, folders, abbreviations = [], [], {}
    for name, m in zip(names, models):
        res = T.load_results(m.folder, prefix)
        if res is None:
            _say(
                f"No {prefix}.json in {m.folder}: {name} left out of the "
                "accuracy tables"
            )
            continue
        runs.append((name, res))
        folders.append(m.folder)
        abbreviations.update(m.abbreviations)
    sections = []
    if runs:
        sections += [
            "## Class-wise accuracy (%)",
            "",
            "Avg: mean of the class-wise accuracies (the paper's Avg); "
            "Overall: accuracy over all test examples.",
            "",
            T.class_accuracy_table(runs, abbreviations or None),
            "",
        ]
        # What the groups are, as the runs recorded it (device, speaker,
        # salience, ...); runs of older versions say nothing: "group".
        group_by = {r.get("group_by") for _, r in runs} - {None}
        what = group_by.pop() if len(group_by) == 1 else "group"
        groups = T.group_accuracy_table(runs, group_name=what.capitalize())
        if groups is None:
            _say("No per-group results: skipping the per-group table")
        else:
            sections += [f"## Accuracy per {what} (%)", "", groups, ""]
    reports = [(name, parameter_report(m)) for name, m in zip(names, models)]
    sections += [
        "## Parameters",
        "",
        T.parameter_table(reports),
        "",
    ]
    md = os.path.join(out, "tables.md")
    with open(md, "w", encoding="utf-8") as f:
        f.write("\n".join(sections))
    js = os.path.join(out, "tables.json")
    with open(js, "w", encoding="utf-8") as f:
        json.dump(
            [
                {"name": name, "folder": folder, "results": res}
                for (name, res), folder in zip(runs, folders)
            ],
            f,
            indent=1,
        )
    params = dict(reports[0][1], name=names[0], folder=models[0].folder)
    if len(reports) > 1:
        params["others"] = [
            dict(rep, name=name, folder=m.folder)
            for (name, rep), m in zip(reports[1:], models[1:])
        ]
    pj = os.path.join(out, "parameters.json")
    with open(pj, "w", encoding="utf-8") as f:
        json.dump(params, f, indent=1)
    return [md, js, pj]


def analyse(argv=None):
    """Load the models, write the figures and tables.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    list of str
        The files written.
    """
    args = parse_args(argv)
    for folder in [args.folder, args.sinc, *args.compare]:
        if folder is not None and not os.path.isdir(folder):
            raise FileNotFoundError(f"No such run or model folder: {folder}")
    out = args.out or os.path.join(args.folder, "analysis")
    os.makedirs(out, exist_ok=True)
    model = load_trained(args.folder, device=args.device)
    _say(f"Loaded {model.name} from {model.checkpoint_dir}")
    sinc = load_trained(args.sinc, device=args.device) if args.sinc else None

    others = []
    seen = {os.path.realpath(model.folder)}
    for folder in ([args.sinc] if args.sinc else []) + args.compare:
        if os.path.realpath(folder) in seen:
            continue
        seen.add(os.path.realpath(folder))
        others.append(
            sinc
            if sinc is not None and folder == args.sinc
            else load_trained(folder, device=args.device)
        )

    written = write_figure2(model, sinc, out)
    written += write_figure3(model, args.audio, out)
    written += write_tables([model, *others], out, args.results_prefix)
    for path in written:
        _say(f"Wrote {path}")
    return written


def main(argv=None):
    """Command line entry point (``sb-relevance-analysis``).

    Runs :func:`analyse`; bad input ends with one line on stderr and exit
    status 1.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success.

    Example
    -------
    >>> import contextlib
    >>> try:
    ...     with contextlib.redirect_stderr(sys.stdout):
    ...         main(["/nonexistent/run"])
    ... except SystemExit as e:
    ...     print("exit", e.code)
    python -m speechbrain_relevance.analysis: error: No such run or model ...
    exit 1
    """

    def run(args):
        analyse(args)

    return run_main(run, argv, prog=command_name(SCRIPT, MODULE))


if __name__ == "__main__":
    sys.exit(main())
