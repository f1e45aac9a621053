"""How close spectral mode is to the conv modes, measured.

Spectral mode computes the full linear convolution's energy (Parseval), so
it must equal ``mode="conv", padding="full"``; the authors' reference uses
``padding="valid"``, which drops the edge outputs. This script measures
both gaps on the paper's configuration (80 filters, 705 taps, frames of
2048, hop 1024, 44.1 kHz, mel init) and prints a table and writes JSON.

Usage::

    python benchmarks/spectral_vs_valid.py

Authors
 * speechbrain-relevance developers
"""

import argparse
import json
import os

import torch

from speechbrain_relevance.lobes import CosGaussFilterbank

CONFIG = dict(
    n_filters=80,
    sample_rate=44100,
    win_length=2048,
    hop_length=1024,
    kernel_size=705,
)


def signals(n_samples, generator):
    """Test signals: white noise, pink-ish noise and a tone mixture."""
    white = torch.randn(2, n_samples, generator=generator)
    spectrum = torch.fft.rfft(white)
    freqs = torch.arange(spectrum.shape[-1]).clamp(min=1)
    pink = torch.fft.irfft(spectrum / freqs.sqrt(), n=n_samples)
    t = torch.arange(n_samples) / 44100
    tones = sum(
        torch.sin(2 * torch.pi * f * t) for f in (110.0, 1000.0, 9000.0)
    ).expand(2, -1)
    return {"white noise": white, "pink noise": pink, "tones": tones}


def main(argv=None):
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--out", default="benchmarks/results/spectral_vs_valid.json"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    spectral = CosGaussFilterbank(mode="spectral", **CONFIG)
    full = CosGaussFilterbank(mode="conv", padding="full", **CONFIG)
    valid = CosGaussFilterbank(mode="conv", padding="valid", **CONFIG)
    full.load_state_dict(spectral.state_dict())
    valid.load_state_dict(spectral.state_dict())
    rows = []
    with torch.no_grad():
        for name, x in signals(int(44100 * args.seconds), gen).items():
            s, f, v = spectral(x), full(x), valid(x)
            es, ef = s.double().exp() - 1e-3, f.double().exp() - 1e-3
            # Relative to each band's own energy, for bands within 60 dB of
            # the frame's strongest band: fp32 FFT rounding sits about
            # 1e-7 below a frame's total energy, so a band far below that
            # (a tone's distant bands) has no meaningful relative error.
            top = ef.amax(dim=-1, keepdim=True)
            keep = ef >= 1e-6 * top
            err = (es - ef).abs()
            rel = (err / ef.clamp_min(1e-30))[keep].max().item()
            rel_top = (err / top).max().item()
            d = (s - v).abs()
            rows.append(
                {
                    "signal": name,
                    "max_rel_energy_err_vs_full": rel,
                    "max_err_vs_full_rel_to_frame_peak": rel_top,
                    "mean_abs_log_diff_vs_valid": d.mean().item(),
                    "mean_abs_log_diff_vs_valid_low20": d[..., :20]
                    .mean()
                    .item(),
                    "mean_abs_log_diff_vs_valid_high60": d[..., 20:]
                    .mean()
                    .item(),
                    "max_abs_log_diff_vs_valid": d.max().item(),
                }
            )
    lines = [
        "| signal | max rel. energy err vs conv full (bands within 60 dB) "
        "| err / frame peak | mean abs log diff vs conv valid | bands 0-19 "
        "| bands 20-79 | max |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['signal']} | {r['max_rel_energy_err_vs_full']:.1e} | "
            f"{r['max_err_vs_full_rel_to_frame_peak']:.1e} | "
            f"{r['mean_abs_log_diff_vs_valid']:.3f} | "
            f"{r['mean_abs_log_diff_vs_valid_low20']:.3f} | "
            f"{r['mean_abs_log_diff_vs_valid_high60']:.3f} | "
            f"{r['max_abs_log_diff_vs_valid']:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"rows": rows, "table_markdown": table}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
