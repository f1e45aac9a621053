#!/usr/bin/env python3
"""The project's main job on CPU: a small, honest DCASE2020 experiment.

1. Generates a small synthetic dataset in the official DCASE2020 Task 1A
   development layout (reused if already there).
2. Runs the real recipe (``train.py``, data preparation included) twice:
   the proposed Cos-Gauss + 2-head relevance system and the log-mel
   baseline, with small CPU-friendly overrides (narrow FCN, short clips,
   few epochs).
3. Prints both test accuracies beside chance level and writes
   ``<output>/demo_summary.md`` and ``.json``.

Usage (from the repository root)::

    make demo
    # or: python recipes/DCASE2020/demo.py [--epochs 7] [--output DIR]

Authors
 * speechbrain-relevance developers
"""

import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SYSTEMS = [
    ("relevance_2head", "Cos-Gauss + 2-head relevance (proposed)"),
    ("mel_baseline", "log-mel baseline"),
]


def parse_args(argv):
    """Command-line options."""
    sys.path.insert(0, ROOT)
    from speechbrain_relevance.cli import ArgumentParser

    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data_root", default=os.path.join(ROOT, "demo_data")
    )
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "demo_results")
    )
    # 15 epochs end on a warm restart boundary (restarts at 1, 3, 7, 15).
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--n_cities", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the synthetic dataset")
    parser.add_argument("--train_seeds", type=int, nargs="+", default=[1234],
                        help="training seeds; several give mean +- std")
    # Results depend on the thread count (the order of float sums): fix it,
    # so the same command gives the same numbers on any machine.
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fcn_width", type=float, default=0.25)
    parser.add_argument(
        "--systems",
        nargs="*",
        default=[name for name, _ in SYSTEMS],
        help="hparams names to train",
    )
    return parser.parse_args(argv)


def run_system(name, data_folder, out_dir, args, seed):
    """Train and test one hparams file through train.py; return results."""
    crop = int(args.duration * 44100) // 1024 + 1 - 8 - 15
    cmd = [
        sys.executable,
        os.path.join(HERE, "train.py"),
        os.path.join(HERE, "hparams", f"{name}.yaml"),
        f"--data_folder={data_folder}",
        f"--output_folder={out_dir}",
        f"--number_of_epochs={args.epochs}",
        "--batch_size=16",
        f"--fcn_width={args.fcn_width}",
        f"--crop_frames={crop}",
        "--num_workers=0",
        "--device=cpu",
        f"--seed={seed}",
    ]
    os.makedirs(out_dir, exist_ok=True)
    log_path = os.path.join(out_dir, "demo_stdout.txt")
    print(f"\n== {name}: training ({args.epochs} epochs); log: {log_path}")
    start = time.time()
    with open(log_path, "ab") as log:
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
                   MKL_NUM_THREADS=str(args.threads))
        proc = subprocess.Popen(
            cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env,
        )
        for raw in proc.stdout:
            log.write(raw)
            line = raw.decode(errors="replace")
            if "train_logger" in line:
                print("   " + line.split(" - ", 1)[-1].strip(), flush=True)
        code = proc.wait()
    if code != 0:
        raise SystemExit(
            f"{name} failed (exit {code}); see the end of {log_path}"
        )
    with open(os.path.join(out_dir, "test_results.json")) as f:
        results = json.load(f)
    results["minutes"] = (time.time() - start) / 60
    return results


def write_figures(args, test):
    """Paper figures and tables for the demo's runs; returns a note."""
    runs = {n: os.path.join(args.output, n) for n in args.systems}
    if len(args.train_seeds) > 1:
        # Figures of the first seed's runs.
        runs = {n: os.path.join(p, str(args.train_seeds[0]))
                for n, p in runs.items()}
    main_run = runs.get("relevance_2head")
    if main_run is None:
        return ""
    # A device-a airport clip of the test split, like the paper's Figure 3.
    clips = sorted(
        e["wav"] for e in test.values()
        if e["device"] == "a" and e["scene"] == "airport"
    ) or sorted(e["wav"] for e in test.values())
    out = os.path.join(args.output, "analysis")
    cmd = [
        sys.executable, "-m", "speechbrain_relevance.analysis", main_run,
        "--out", out, "--audio", clips[0],
    ]
    others = [p for n, p in runs.items() if p != main_run]
    if others:
        cmd += ["--compare", *others]
    print("\n== analysis figures and tables")
    subprocess.run(cmd, cwd=ROOT, check=True)
    return (
        f"\n\nFigures and tables (paper Figures 2 and 3, Table 1 format, "
        f"parameter counts): {out}\n"
    )


def main(argv=None):
    """Generate data, train both systems, compare with chance."""
    args = parse_args(argv)
    # This folder is on sys.path: demo.py runs as a script.
    from synthetic_dcase2020 import generate_synthetic_dcase

    start = time.time()
    print("== generating the synthetic DCASE2020 development set")
    data_folder = generate_synthetic_dcase(
        root=args.data_root,
        n_cities=args.n_cities,
        n_locations_per_city=2,
        n_segments_per_location=3,
        duration=args.duration,
        seed=args.seed,
    )
    rows = []
    for name in args.systems:
        label = dict(SYSTEMS).get(name, name)
        runs = []
        for seed in args.train_seeds:
            out_dir = os.path.join(args.output, name)
            if len(args.train_seeds) > 1:
                out_dir = os.path.join(out_dir, str(seed))
            runs.append(run_system(name, data_folder, out_dir, args, seed))
        accs = [r["accuracy"] for r in runs]
        losses = [r["log_loss"] for r in runs]
        rows.append(
            {
                "system": label,
                "hparams": name,
                "train_seeds": args.train_seeds,
                "accuracy": statistics.mean(accs),
                "accuracy_std": statistics.stdev(accs) if len(accs) > 1
                else 0.0,
                "accuracies": accs,
                "log_loss": statistics.mean(losses),
                "n_test": runs[0]["n"],
                "minutes": statistics.mean(r["minutes"] for r in runs),
            }
        )
    n_classes = 10
    first = os.path.join(args.output, args.systems[0])
    if len(args.train_seeds) > 1:
        first = os.path.join(first, str(args.train_seeds[0]))
    with open(os.path.join(first, "manifests", "test.json")) as f:
        test = json.load(f)
    scenes = [e["scene"] for e in test.values()]
    majority = max(scenes.count(s) for s in set(scenes)) / len(scenes)
    lines = [
        "| system | test accuracy | log loss | minutes (2 CPU cores) |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        spread = (
            f" +- {100 * r['accuracy_std']:.1f}"
            if len(args.train_seeds) > 1 else ""
        )
        lines.append(
            f"| {r['system']} | {100 * r['accuracy']:.1f}%{spread} | "
            f"{r['log_loss']:.3f} | {r['minutes']:.1f} |"
        )
    lines.append(
        f"| chance (uniform over {n_classes} scenes) | "
        f"{100 / n_classes:.1f}% | {math.log(n_classes):.3f} | |"
    )
    lines.append(
        f"| majority class of this test split | {100 * majority:.1f}% | | |"
    )
    table = "\n".join(lines)
    figures = write_figures(args, test)
    summary = (
        f"Synthetic DCASE2020 layout, {len(test)} test clips of "
        f"{args.duration:g} s, {args.epochs} epochs, FCN width "
        f"{args.fcn_width}, training seeds {args.train_seeds} (mean +- std "
        f"over seeds), {args.threads} threads; total "
        f"{((time.time() - start) / 60):.1f} min.\n\n"
        + table
        + figures
    )
    print("\n" + summary)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "demo_summary.md"), "w") as f:
        f.write(summary + "\n")
    with open(os.path.join(args.output, "demo_summary.json"), "w") as f:
        json.dump(
            {"rows": rows, "chance": 1 / n_classes, "majority": majority},
            f,
            indent=2,
        )
    return rows


if __name__ == "__main__":
    main()
