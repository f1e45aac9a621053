r"""Speed of the offline DCASE2020 audio augmentation, by worker count.

Generates a small synthetic DCASE2020 development set in the official
layout (10 s clips at 44.1 kHz, parallel device recordings), writes its
manifests with the recipe's data preparation, then runs the recipe's
``augment_manifest`` (``recipes/DCASE2020/augment_dcase2020.py``) with its
defaults (all five methods, one copy each, n_fft 2048, PCM_16) once per
``--num_workers`` value, each into a fresh output folder. Reports clips
written per second of wall time, whole call included (source checks and
device-response estimation, a fixed cost of a few seconds, are in it), and
checks that every worker count wrote byte-identical files.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/augment_speed.py --workers 1 2

Authors
 * speechbrain-relevance developers
"""

import datetime
import json
import os
import shlex
import sys
import tempfile
import time

from speechbrain_relevance.cli import ArgumentParser, run_main

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(HERE, "results", "augment_speed.json")
#: Training clips of the paper-scale run (fold 1 train, ~14k) times the
#: methods' copies: about 66k augmented clips (README of the recipe).
PAPER_CLIPS = 66000


def parse_args(argv=None):
    """Parse the command line.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    argparse.Namespace
        Parsed options.

    Example
    -------
    >>> parse_args(["--workers", "1", "4"]).workers
    [1, 4]
    """
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n_cities", type=int, default=4,
                        help="size of the synthetic set (cities)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the main process")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if min(args.workers) < 1:
        parser.error("--workers must be >= 1")
    return args


def _file_bytes(manifest):
    """``{id: wav bytes}`` of an augmented manifest."""
    with open(manifest, encoding="utf-8") as f:
        data = json.load(f)
    out = {}
    for key, entry in data.items():
        with open(entry["wav"], "rb") as f:
            out[key] = f.read()
    return out


def main(argv=None):
    """Run the benchmark and write the JSON.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    dict
        The results written to ``--out``.
    """
    args = parse_args(argv)
    import torch

    from speechbrain_relevance.data.audio import audio_info

    sys.path.insert(0, os.path.join(ROOT, "recipes", "DCASE2020"))
    from augment_dcase2020 import augment_manifest, estimate_device_responses
    from prepare_dcase2020 import prepare_dcase2020
    from synthetic_dcase2020 import generate_synthetic_dcase

    sys.path.insert(0, HERE)
    from train_step import machine_info

    torch.set_num_threads(args.threads)
    runs = []
    reference = None
    with tempfile.TemporaryDirectory(prefix="augment_speed_") as tmp:
        data = generate_synthetic_dcase(
            root=os.path.join(tmp, "data"), n_cities=args.n_cities,
            n_locations_per_city=2, n_segments_per_location=1,
            duration=10.0, seed=0,
        )
        prepare_dcase2020(str(data), os.path.join(tmp, "prep"))
        manifest = os.path.join(tmp, "prep", "train.json")
        with open(manifest, encoding="utf-8") as f:
            n_sources = len(json.load(f))
        # The fixed cost of every run, done once here to subtract it:
        # checking every source header and estimating device responses.
        with open(manifest, encoding="utf-8") as f:
            entries = json.load(f)
        start = time.perf_counter()
        for entry in entries.values():
            audio_info(entry["wav"])
        estimate_device_responses(entries, n_fft=2048, sample_rate=44100)
        fixed = time.perf_counter() - start
        for workers in args.workers:
            out_folder = os.path.join(tmp, f"aug_{workers}")
            load = os.getloadavg()[0]
            start = time.perf_counter()
            out = augment_manifest(
                manifest, out_folder, num_workers=workers, progress=False,
            )
            wall = time.perf_counter() - start
            files = _file_bytes(out)
            if reference is None:
                reference = files
            runs.append({
                "num_workers": workers,
                "clips": len(files),
                "wall_s": wall,
                "clips_per_s": len(files) / wall,
                "clips_per_s_without_fixed_cost": len(files)
                / max(wall - fixed, 1e-9),
                "load_average_1min_before": load,
                "identical_to_first": files == reference,
                "paper_scale_hours": PAPER_CLIPS / (len(files) / wall)
                / 3600,
            })
            print(f"{workers} worker(s): {len(files)} clips in {wall:.1f} s "
                  f"= {len(files) / wall:.2f} clips/s (load {load:.1f})",
                  flush=True)
    results = {
        "benchmark": "augment_speed",
        "command": "python benchmarks/augment_speed.py " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
        ),
        "date": datetime.date.today().isoformat(),
        "machine": machine_info("cpu", torch.get_num_threads()),
        "source_clips": n_sources,
        "clip": "10 s, 44.1 kHz, synthetic DCASE2020 (official layout)",
        "options": "all five methods, copies 1, n_fft 2048, PCM_16",
        "fixed_cost_s": fixed,
        "fixed_cost": "source header checks and device-response "
        "estimation, timed once apart and subtracted in "
        "clips_per_s_without_fixed_cost",
        "runs": runs,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    run_main(main)
