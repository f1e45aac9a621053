#!/usr/bin/env python3
r"""Offline audio-level augmentation of the DCASE2020 Task 1A training set.

Reads only the training manifest written by the data preparation, writes
augmented wavs and ``augmented.json`` into ``--out_folder`` and, with
``--merged_manifest``, a manifest of the original plus augmented clips to
train on. Re-running with the same arguments reuses the output; an
interrupted run (even ``kill -9``) resumes, skipping finished clips. The
output does not depend on ``--num_workers``: every clip draws from its own
random stream (seed and clip id).

Example::

    python augment_dcase2020.py --train_manifest results/prep/train.json \\
        --out_folder results/augmented --copies 1 --seed 1234 \\
        --num_workers 4 \\
        --merged_manifest results/augmented/train_augmented.json

One copy per method and source clip turns the ~14k clips of the official
fold 1 into about 80k (the paper's size): ~14k each for mix, pitch,
stretch and noise, plus one spectrum-corrected copy per device-a clip.

Authors
 * speechbrain-relevance developers
"""

import argparse
import logging

from speechbrain_relevance.augment.audio import (
    METHODS,
    augment_manifest,
    merge_manifests,
)
from speechbrain_relevance.cli import ArgumentParser, run_main
from speechbrain_relevance.data.audio import AudioFileError


def _method_copies(text):
    """Parse ``METHOD=N`` of ``--method_copies``."""
    method, sep, count = text.partition("=")
    if not sep or method not in METHODS or not count.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected METHOD=N with METHOD in {METHODS}, got {text!r}"
        )
    return method, int(count)


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
    >>> args = parse_args(["--train_manifest", "t.json", "--out_folder", "o",
    ...                    "--method-copies", "pitch=2", "--num_workers", "2"])
    >>> args.copies, args.method_copies, args.num_workers, args.no_progress
    (1, [('pitch', 2)], 2, False)
    """
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--train_manifest", required=True,
        help="training manifest (JSON); the only data that is read",
    )
    parser.add_argument(
        "--out_folder", required=True,
        help="folder of the augmented wavs and augmented.json",
    )
    parser.add_argument(
        "--copies", type=int, default=1,
        help="augmented clips per source clip and method",
    )
    parser.add_argument(
        "--method_copies", type=_method_copies, action="append", default=[],
        metavar="METHOD=N", help="override --copies for one method",
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS),
        help="augmentations to apply",
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--sample_rate", type=int, default=44100)
    parser.add_argument(
        "--n_fft", type=int, default=2048,
        help="STFT size of pitch shift, time stretch, spectrum correction",
    )
    parser.add_argument(
        "--noise_kind", choices=("white", "pink"), default="white"
    )
    parser.add_argument(
        "--snr_range_db", type=float, nargs=2, default=(10.0, 30.0),
        metavar=("LOW", "HIGH"),
    )
    parser.add_argument(
        "--subtype", default="PCM_16",
        help="sample format of the written wavs (PCM_16, PCM_24, FLOAT)",
    )
    parser.add_argument(
        "--merged_manifest", default=None,
        help="also write train + augmented entries to this manifest",
    )
    parser.add_argument(
        "--num_workers", type=int, default=1,
        help="processes computing clips (the output does not depend on it)",
    )
    parser.add_argument(
        "--no_progress", action="store_true",
        help="no progress bar (there is none when stderr is not a terminal)",
    )
    args = parser.parse_args(argv)
    if args.num_workers < 1:
        parser.error("--num_workers must be at least 1")
    for method, _ in args.method_copies:
        if method not in args.methods:
            parser.error(f"--method_copies names {method!r}, not in --methods")
    return args


def main(argv=None):
    """Run the augmentation from the command line.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    str
        Path of the written ``augmented.json``.

    Example
    -------
    >>> main(["--help"])  # doctest: +SKIP
    """
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    copies = args.copies
    if args.method_copies:
        copies = {m: args.copies for m in args.methods}
        copies.update(dict(args.method_copies))
    out = augment_manifest(
        args.train_manifest,
        args.out_folder,
        sample_rate=args.sample_rate,
        copies=copies,
        methods=args.methods,
        seed=args.seed,
        snr_range_db=tuple(args.snr_range_db),
        noise_kind=args.noise_kind,
        n_fft=args.n_fft,
        subtype=args.subtype,
        num_workers=args.num_workers,
        progress=False if args.no_progress else None,
    )
    print(out)
    if args.merged_manifest:
        merged = merge_manifests(
            [args.train_manifest, out], args.merged_manifest
        )
        print(f"{args.merged_manifest} ({len(merged)} clips)")
    return out


if __name__ == "__main__":
    # Bad input (a missing or unreadable source file, a bad option value)
    # ends in one line, not a traceback.
    run_main(main, user_errors=(AudioFileError, ValueError))
