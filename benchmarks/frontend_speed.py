"""Speed and peak memory of the front-ends on 10 s clips at 44.1 kHz.

Times forward and forward+backward (median of several runs) and measures
peak memory, each front-end in a fresh worker process so that peaks do not
mix. Rows: Cos-Gauss spectral, Cos-Gauss conv (valid, the reference
computation; smaller batch, reported per clip), Sinc spectral, torchaudio
MelSpectrogram + log (80 mels, n_fft 2048, hop 1024), SpeechBrain Fbank with
learnable gaussian filters, SpeechBrain Leaf with 80 filters. Each row's
ratio is to the mel row's forward time per clip from the same run.

Usage::

    python benchmarks/frontend_speed.py               # CPU, 2 threads
    python benchmarks/frontend_speed.py --device cuda  # GPU

Targets (issue "Foundation"): Cos-Gauss spectral forward+backward at most
1.5x the mel forward, at least 100x faster than conv mode per clip, peak
memory at most 2x mel.

Authors
 * speechbrain-relevance developers
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SAMPLE_RATE = 44100
CLIP_SECONDS = 10.0
WIN, HOP, N_FILTERS = 2048, 1024, 80

# name -> (builder key, batch size, learnable)
ROWS = {
    "mel (torchaudio) + log": ("mel", 16, False),
    "Cos-Gauss spectral": ("cosgauss_spectral", 16, True),
    "Sinc spectral": ("sinc_spectral", 16, True),
    "Cos-Gauss conv (valid)": ("cosgauss_conv", 1, True),
    "SpeechBrain Fbank (gaussian, learnable)": ("sb_fbank", 16, True),
    "SpeechBrain Leaf (80)": ("sb_leaf", 1, True),
}


def build(key, device):
    """Return a callable ``f(wavs) -> features`` and its parameters."""
    import torch
    import torchaudio

    from speechbrain_relevance.lobes import CosGaussFilterbank, SincFilterbank

    ms_win = 1000 * WIN / SAMPLE_RATE
    ms_hop = 1000 * HOP / SAMPLE_RATE
    common = dict(
        n_filters=N_FILTERS,
        sample_rate=SAMPLE_RATE,
        win_length=WIN,
        hop_length=HOP,
        kernel_size=705,
    )
    if key == "mel":
        mel = torchaudio.transforms.MelSpectrogram(
            SAMPLE_RATE, n_fft=WIN, hop_length=HOP, n_mels=N_FILTERS
        ).to(device)
        return (lambda x: torch.log(mel(x) + 1e-3)), []
    if key == "cosgauss_spectral":
        m = CosGaussFilterbank(mode="spectral", **common)
    elif key == "sinc_spectral":
        m = SincFilterbank(mode="spectral", **common)
    elif key == "cosgauss_conv":
        m = CosGaussFilterbank(mode="conv", padding="valid", **common)
    elif key == "sb_fbank":
        from speechbrain.lobes.features import Fbank

        m = Fbank(
            requires_grad=True,
            filter_shape="gaussian",
            sample_rate=SAMPLE_RATE,
            n_fft=WIN,
            n_mels=N_FILTERS,
            win_length=ms_win,
            hop_length=ms_hop,
        )
    elif key == "sb_leaf":
        from speechbrain.lobes.features import Leaf

        m = Leaf(
            out_channels=N_FILTERS,
            window_len=ms_win,
            window_stride=ms_hop,
            sample_rate=SAMPLE_RATE,
            in_channels=1,
        )
    else:
        raise KeyError(key)
    m = m.to(device)
    return m, list(m.parameters())


def _proc_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def worker(key, batch, learnable, device, repeats):
    """Measure one front-end; print a JSON line."""
    import torch

    if device == "cpu":
        torch.set_num_threads(2)
    torch.manual_seed(0)
    n = int(SAMPLE_RATE * CLIP_SECONDS)
    x = torch.randn(batch, n, device=device)
    f, params = build(key, device)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def fwd():
        with torch.no_grad():
            f(x)
        sync()

    def fwd_bwd():
        for p in params:
            p.grad = None
        f(x).sum().backward()
        sync()

    def peak_of(fn):
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fn()
            return (torch.cuda.max_memory_allocated() - base) / 2**20
        # VmHWM is the process's peak resident size: the first call of a
        # fresh process shows the extra memory the computation needs.
        base = _proc_kib("VmRSS")
        fn()
        return max(0, _proc_kib("VmHWM") - base) / 1024

    out = {"key": key, "batch": batch, "device": device}
    # One-time allocations (FFT plans, thread pools, kernels) are not the
    # front-end's memory: warm up on one short clip, then measure the peak
    # on the real batch before any timing loop has grown the heap.
    xs = x[:1, : SAMPLE_RATE // 2]
    with torch.no_grad():
        f(xs)
    if learnable:
        f(xs).sum().backward()
    out["peak_fwd_mib"] = peak_of(fwd)
    if learnable:
        out["peak_train_mib"] = peak_of(fwd_bwd)

    def timed(fn):
        fn()  # warm-up
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
        return statistics.median(runs)

    out["fwd_s"] = timed(fwd)
    if learnable:
        out["fwd_bwd_s"] = timed(fwd_bwd)
    print("RESULT " + json.dumps(out), flush=True)


def run_row(key, batch, learnable, device, repeats):
    """Run one row in a fresh process and return its measurements."""
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        key,
        "--batch",
        str(batch),
        "--device",
        device,
        "--repeats",
        str(repeats),
    ]
    if learnable:
        cmd.append("--learnable")
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"worker {key} failed:\n{res.stderr[-3000:]}")


def device_name(device):
    """Describe the device the benchmark ran on."""
    import platform

    import torch

    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()}, 2 threads"


def main(argv=None):
    """Run all rows, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", default="benchmarks/results/frontend_speed.json"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], help="builder keys to skip"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--learnable", action="store_true", help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        worker(
            args.worker, args.batch, args.learnable, args.device, args.repeats
        )
        return None

    results = []
    for name, (key, batch, learnable) in ROWS.items():
        if key in args.skip:
            continue
        # The slow time-domain rows are timed fewer times.
        repeats = args.repeats if batch > 1 else max(1, args.repeats // 2)
        if args.device == "cuda" and batch == 1:
            batch = 4
        r = run_row(key, batch, learnable, args.device, repeats)
        r["name"] = name
        results.append(r)
        print(f"measured {name}", file=sys.stderr, flush=True)

    mel = next(r for r in results if r["key"] == "mel")
    mel_fwd = mel["fwd_s"] / mel["batch"]
    mel_peak = mel["peak_fwd_mib"]
    spectral = next(
        (r for r in results if r["key"] == "cosgauss_spectral"), None
    )
    conv = next((r for r in results if r["key"] == "cosgauss_conv"), None)

    header = (
        "| front-end | batch | fwd ms/clip | fwd+bwd ms/clip | "
        "fwd+bwd / mel fwd | peak MiB (batch) | peak MiB/clip |"
    )
    lines = [header, "|" + "---|" * 7]
    for r in results:
        fwd = 1000 * r["fwd_s"] / r["batch"]
        fb = r.get("fwd_bwd_s")
        fb_ms = 1000 * fb / r["batch"] if fb is not None else None
        ratio = (fb_ms / 1000 if fb_ms else fwd / 1000) / mel_fwd
        peak = r.get("peak_train_mib", r["peak_fwd_mib"])
        r["fwd_ms_per_clip"] = fwd
        r["fwd_bwd_ms_per_clip"] = fb_ms
        r["ratio_to_mel_fwd"] = ratio
        r["peak_mib"] = peak
        lines.append(
            f"| {r['name']} | {r['batch']} | {fwd:.1f} | "
            f"{'-' if fb_ms is None else f'{fb_ms:.1f}'} | {ratio:.2f}x | "
            f"{peak:.0f} | {peak / r['batch']:.1f} |"
        )
    summary = {}
    if spectral:
        summary["spectral_fwd_bwd_over_mel_fwd"] = spectral[
            "ratio_to_mel_fwd"
        ]
        summary["spectral_peak_over_mel_peak"] = (
            spectral["peak_mib"] / spectral["batch"]
        ) / (mel_peak / mel["batch"])
    if spectral and conv:
        summary["conv_over_spectral_fwd_bwd_per_clip"] = (
            conv["fwd_bwd_ms_per_clip"] / spectral["fwd_bwd_ms_per_clip"]
        )
    table = "\n".join(lines)
    print(f"Device: {device_name(args.device)}; torch threads: 2 on CPU")
    print(table)
    for k, v in summary.items():
        print(f"{k}: {v:.2f}")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(
            {
                "device": device_name(args.device),
                "clip_seconds": CLIP_SECONDS,
                "sample_rate": SAMPLE_RATE,
                "rows": results,
                "summary": summary,
                "table_markdown": table,
            },
            f,
            indent=2,
        )
    print(f"wrote {args.out}")
    return summary


if __name__ == "__main__":
    main()
