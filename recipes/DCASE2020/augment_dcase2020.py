#!/usr/bin/env python3
r"""Offline audio-level augmentation of the DCASE2020 Task 1A training set.

Reads only the training manifest written by the data preparation, writes
augmented wavs and ``augmented.json`` into ``--out-folder`` and, with
``--merged-manifest``, a manifest of the original plus augmented clips to
train on. Re-running with the same arguments reuses the output; an
interrupted run resumes.

Example::

    python augment_dcase2020.py --train-manifest results/prep/train.json \\
        --out-folder results/augmented --copies 1 --seed 1234 \\
        --merged-manifest results/augmented/train_augmented.json

One copy per method and source clip turns the ~14k clips of the official
fold 1 into about 80k (the paper's size): ~14k each for mix, pitch,
stretch and noise, plus one spectrum-corrected copy per device-a clip.

Authors
 * speechbrain-relevance developers
"""

import argparse
import logging
import sys

from speechbrain_relevance.augment.audio import (
    METHODS,
    augment_manifest,
    merge_manifests,
)


def _method_copies(text):
    """Parse ``METHOD=N`` of ``--method-copies``."""
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
    >>> args = parse_args(["--train-manifest", "t.json", "--out-folder", "o",
    ...                    "--method-copies", "pitch=2"])
    >>> args.copies, args.method_copies
    (1, [('pitch', 2)])
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--train-manifest", required=True,
        help="training manifest (JSON); the only data that is read",
    )
    parser.add_argument(
        "--out-folder", required=True,
        help="folder of the augmented wavs and augmented.json",
    )
    parser.add_argument(
        "--copies", type=int, default=1,
        help="augmented clips per source clip and method",
    )
    parser.add_argument(
        "--method-copies", type=_method_copies, action="append", default=[],
        metavar="METHOD=N", help="override --copies for one method",
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS),
        help="augmentations to apply",
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument(
        "--n-fft", type=int, default=2048,
        help="STFT size of pitch shift, time stretch, spectrum correction",
    )
    parser.add_argument(
        "--noise-kind", choices=("white", "pink"), default="white"
    )
    parser.add_argument(
        "--snr-range-db", type=float, nargs=2, default=(10.0, 30.0),
        metavar=("LOW", "HIGH"),
    )
    parser.add_argument(
        "--subtype", default="PCM_16",
        help="sample format of the written wavs (PCM_16, PCM_24, FLOAT)",
    )
    parser.add_argument(
        "--merged-manifest", default=None,
        help="also write train + augmented entries to this manifest",
    )
    return parser.parse_args(argv)


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
        for method, count in args.method_copies:
            if method not in args.methods:
                raise SystemExit(
                    f"--method-copies names {method!r}, not in --methods"
                )
            copies[method] = count
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
    )
    print(out)
    if args.merged_manifest:
        merged = merge_manifests(
            [args.train_manifest, out], args.merged_manifest
        )
        print(f"{args.merged_manifest} ({len(merged)} clips)")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
