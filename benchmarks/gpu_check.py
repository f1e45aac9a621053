r"""GPU check: front-end speed, training steps, FSDD and DDP on one machine.

The project had never been measured on a GPU. This one script, meant to
finish in about 8 minutes on one GPU (an estimate: it has not run on one
yet; the two FSDD cross-validations and the ``torch.compile`` cells take
most of it), measures on the device it runs on:

1. **Front-ends**, forward and forward+backward, as ratios to torchaudio's
   ``MelSpectrogram`` forward (+ log) of the same protocol, measured in the
   same process: Cos-Gauss (``CosGaussFilterbank``, modes ``spectral`` and
   ``dft``), Cos-Gauss + 2-head relevance (``MultiHeadRelevance`` after
   it), SincNet (``SincFilterbank``, spectral), SpeechBrain ``Fbank``
   (learnable Gaussian filters) and SpeechBrain ``Leaf``. Two protocols:
   EfficientLEAF's (batch 256 x 1 s at 16 kHz, 40 bands) and the paper's
   (16 x 10 s at 44.1 kHz, 80 bands, window 2048, hop 1024, kernel 705).
   Three precisions: fp32, bf16 autocast and ``torch.compile`` (fp32). On
   CUDA every call is timed with CUDA events after a warm-up and the peak
   memory is ``torch.cuda.max_memory_allocated`` over one more call; on
   CPU the median of ``time.perf_counter`` repeats, peak memory null. A
   cell that fails (out of memory, a compile error) records its error and
   the script goes on. "fp32" is fp32 under the settings SpeechBrain
   applies on import, as the recipes train: TF32 matrix products and
   convolutions on Ampere and later GPUs (``SB_DISABLE_QUIRKS=allow_tf32``
   for strict fp32); the JSON records them (``machine``).
2. **One training step** (forward, loss, backward, optimiser step) of each
   recipe's proposed system (``relevance_2head``) and of its log-mel
   baseline (DCASE2020 FCN, UrbanSound8k CNN-LSTM, FSDD CNN), through
   ``benchmarks/train_step.py`` (the recipes' own Brain classes), as the
   ratio proposal / baseline.
3. **One whole FSDD six-fold cross-validation** of log-mel and of the
   relevance front-end (``recipes/FSDD/crossval.py`` in a subprocess, the
   recipe's own settings on ``--device=cuda:0``): wall time and accuracy.
   Skipped (with the reason recorded) on CPU, in the small size, with
   ``--no_fsdd_run`` or when the data are missing.
4. With two or more GPUs, a **two-process NCCL run** of the DCASE2020
   recipe (``torchrun --standalone --nproc_per_node=2``) on a small
   synthetic set; otherwise recorded as skipped with the reason.

On a GPU machine, from the repository root::

    python benchmarks/gpu_check.py --size full

writes ``benchmarks/results/gpu_check.json`` (``--json`` to change it) and
prints the tables. The JSON is rewritten after every part, so a run cut
short keeps what it measured. ``--parts`` runs some parts only, e.g. the
FSDD runs in a separate command where one command may not run long::

    python benchmarks/gpu_check.py --size full --parts frontends \
        train_step ddp
    python benchmarks/gpu_check.py --size full --parts fsdd \
        --json benchmarks/results/gpu_check_fsdd.json

``--compile off`` skips the compile cells. ``--size small --device cpu``
is the CPU smoke test (well under a minute; compile cells, FSDD and DDP
skipped): its figures are not GPU figures.

Authors
 * speechbrain-relevance developers
"""

import contextlib
import datetime
import gc
import importlib.util
import json
import logging
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_JSON = os.path.join(HERE, "results", "gpu_check.json")
DEFAULT_FSDD = os.path.join(os.path.dirname(ROOT), "shared", "datasets",
                            "fsdd")

#: The front-ends measured; ``mel`` is the reference of the ratios.
MEL = "mel"
SYSTEMS = (
    MEL,
    "cosgauss_spectral",
    "cosgauss_dft",
    "cosgauss_relevance",
    "sincnet",
    "sb_fbank",
    "sb_leaf",
)
SYSTEM_NAMES = {
    MEL: "torchaudio mel + log",
    "cosgauss_spectral": "Cos-Gauss spectral",
    "cosgauss_dft": "Cos-Gauss dft",
    "cosgauss_relevance": "Cos-Gauss + 2-head relevance",
    "sincnet": "SincNet (spectral)",
    "sb_fbank": "SpeechBrain Fbank (learnable)",
    "sb_leaf": "SpeechBrain Leaf",
}
PRECISIONS = ("fp32", "bf16", "compile")

#: The two speed protocols. ``full``: (batch, seconds) of the protocol;
#: ``small``: the CPU smoke size (SpeechBrain's Leaf convolves at stride 1
#: with window-long kernels, so the small clips must stay short).
PROTOCOLS = {
    "efficientleaf": {
        "description": "EfficientLEAF's: batch 256 x 1 s at 16 kHz, 40 "
        "bands, 25 ms frames, 10 ms hop",
        "sample_rate": 16000,
        "n_bands": 40,
        "win_length": 400,
        "hop_length": 160,
        # 16 ms, the paper's kernel duration, at 16 kHz (odd).
        "kernel_size": 257,
        "full": (256, 1.0),
        "small": (2, 0.25),
    },
    "paper": {
        "description": "the paper's: batch 16 x 10 s at 44.1 kHz, 80 "
        "bands, window 2048, hop 1024, kernel 705",
        "sample_rate": 44100,
        "n_bands": 80,
        "win_length": 2048,
        "hop_length": 1024,
        "kernel_size": 705,
        "full": (16, 10.0),
        "small": (1, 0.1),
    },
}

#: Timing settings per size: warm-up calls, timed calls (at most), and the
#: seconds one measurement may take (slow cells get fewer repeats, never
#: fewer than ``min_repeats``).
TIMING = {
    "full": {"warmup": 3, "repeats": 10, "min_repeats": 3, "budget_s": 4.0},
    "small": {"warmup": 1, "repeats": 2, "min_repeats": 1, "budget_s": 0.5},
}

#: Training-step part: the proposed system against the recipe's baseline.
PROPOSED = "relevance_2head"
RECIPES = ("DCASE2020", "UrbanSound8k", "FSDD")
#: Small size: clips per batch (one 10 s DCASE clip already takes about
#: half a second per step on one CPU thread).
SMALL_STEP_BATCH = {"DCASE2020": 1, "UrbanSound8k": 1, "FSDD": 4}

#: FSDD cross-validation part: the baseline and the proposed front-end.
FSDD_SYSTEMS = ("mel_baseline", "relevance_2head")

PARTS = ("frontends", "train_step", "fsdd", "ddp")

#: Error messages kept in the JSON are cut to this many characters.
MAX_ERROR_CHARS = 600


# ---------------------------------------------------------------- helpers


def ratio(value, reference):
    """Return ``value / reference``, or None when either is missing.

    Arguments
    ---------
    value : float or None
        A time (or any positive measurement).
    reference : float or None
        The reference measurement (e.g. the mel forward time).

    Returns
    -------
    float or None
        The ratio; None if either is None or the reference is not positive.

    Example
    -------
    >>> ratio(3.0, 1.5)
    2.0
    >>> ratio(None, 1.5) is None, ratio(3.0, 0.0) is None
    (True, True)
    """
    if value is None or reference is None or not reference > 0:
        return None
    return value / reference


def add_mel_ratios(protocol_cells):
    """Fill the ratio fields of one protocol's cells in place.

    The reference is the fp32 forward time of the mel row of the same
    protocol (one anchor for all precisions, so that the bf16 and compile
    rows of mel itself show what those do to the reference).

    Arguments
    ---------
    protocol_cells : dict
        ``{system: {precision: cell}}``; a cell holds ``fwd_ms`` and
        ``fwd_bwd_ms`` (float or None).

    Returns
    -------
    float or None
        The reference time in ms.

    Example
    -------
    >>> cells = {"mel": {"fp32": {"fwd_ms": 2.0, "fwd_bwd_ms": None}},
    ...          "x": {"bf16": {"fwd_ms": 3.0, "fwd_bwd_ms": 8.0}}}
    >>> add_mel_ratios(cells)
    2.0
    >>> cells["x"]["bf16"]["fwd_ratio_to_mel"]
    1.5
    >>> cells["x"]["bf16"]["fwd_bwd_ratio_to_mel"]
    4.0
    >>> cells["mel"]["fp32"]["fwd_bwd_ratio_to_mel"] is None
    True
    """
    mel = protocol_cells.get(MEL, {}).get("fp32", {})
    reference = mel.get("fwd_ms")
    for by_precision in protocol_cells.values():
        for cell in by_precision.values():
            cell["mel_fwd_ms"] = reference
            cell["fwd_ratio_to_mel"] = ratio(cell.get("fwd_ms"), reference)
            cell["fwd_bwd_ratio_to_mel"] = ratio(
                cell.get("fwd_bwd_ms"), reference
            )
    return reference


def error_text(exc):
    """Return a short, one-paragraph description of an exception.

    Arguments
    ---------
    exc : BaseException
        The exception.

    Returns
    -------
    str
        ``"Type: message"``, cut to :data:`MAX_ERROR_CHARS` characters.

    Example
    -------
    >>> error_text(ValueError("bad value"))
    'ValueError: bad value'
    """
    text = f"{type(exc).__name__}: {exc}".strip()
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 3] + "..."
    return text


def _train_step_module():
    """Import ``benchmarks/train_step.py`` (not a package) once."""
    name = "_gpu_check_train_step"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(HERE, "train_step.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def device_info(device):
    """Describe the device, the libraries and the numeric settings.

    Arguments
    ---------
    device : str
        ``"cpu"`` or ``"cuda[:N]"``.

    Returns
    -------
    dict
        ``device_name`` (``torch.cuda.get_device_name`` on CUDA, else
        ``"cpu: "`` + the processor), library versions and settings.
    """
    import speechbrain
    import torch
    import torchaudio

    info = {
        "device": device,
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "speechbrain": speechbrain.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _train_step_module().cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_device_count": (
            torch.cuda.device_count() if torch.cuda.is_available() else 0
        ),
    }
    if device.startswith("cuda"):
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda_version"] = torch.version.cuda
        info["cudnn_version"] = torch.backends.cudnn.version()
        # TF32 changes fp32 speed a lot on Ampere and later: say which
        # settings (SpeechBrain's, applied on import) the figures had.
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        info["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
        info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    else:
        info["device_name"] = "cpu: " + (
            platform.processor() or platform.machine()
        )
    with contextlib.suppress(ImportError, AttributeError):
        from speechbrain.utils import quirks

        # SpeechBrain changes global torch settings on import (TF32, ...).
        info["speechbrain_quirks"] = sorted(quirks.applied_quirks)
    return info


# -------------------------------------------------------------- front-ends


def build_frontend(system, protocol):
    """Build one front-end for one protocol (on CPU, fp32).

    Arguments
    ---------
    system : str
        One of :data:`SYSTEMS`.
    protocol : dict
        A value of :data:`PROTOCOLS`.

    Returns
    -------
    torch.nn.Module
        Maps ``[batch, samples]`` waveforms to features.

    Example
    -------
    >>> import torch
    >>> fe = build_frontend("cosgauss_relevance", PROTOCOLS["efficientleaf"])
    >>> fe(torch.randn(2, 1600)).shape
    torch.Size([2, 11, 40])
    """
    import torch
    from torch import nn

    sr = protocol["sample_rate"]
    n_bands = protocol["n_bands"]
    win, hop = protocol["win_length"], protocol["hop_length"]
    common = dict(
        n_filters=n_bands,
        sample_rate=sr,
        win_length=win,
        hop_length=hop,
        kernel_size=protocol["kernel_size"],
    )
    # SpeechBrain's features take milliseconds.
    win_ms, hop_ms = 1000 * win / sr, 1000 * hop / sr
    if system == MEL:
        import torchaudio

        class LogMel(nn.Module):
            """torchaudio's mel spectrogram, then ``log(. + 1e-3)``."""

            def __init__(self):
                super().__init__()
                self.mel = torchaudio.transforms.MelSpectrogram(
                    sr, n_fft=win, hop_length=hop, n_mels=n_bands
                )

            def forward(self, x):
                return torch.log(self.mel(x) + 1e-3)

        return LogMel()
    from speechbrain_relevance.lobes import (
        CosGaussFilterbank,
        MultiHeadRelevance,
        SincFilterbank,
    )

    if system == "cosgauss_spectral":
        return CosGaussFilterbank(mode="spectral", **common)
    if system == "cosgauss_dft":
        return CosGaussFilterbank(mode="dft", **common)
    if system == "cosgauss_relevance":
        # The paper's proposed front-end, as the recipes configure it.
        return nn.Sequential(
            CosGaussFilterbank(mode="spectral", **common),
            MultiHeadRelevance(n_bands=n_bands, n_heads=2),
        )
    if system == "sincnet":
        return SincFilterbank(mode="spectral", **common)
    if system == "sb_fbank":
        from speechbrain.lobes.features import Fbank

        return Fbank(
            requires_grad=True,
            filter_shape="gaussian",
            sample_rate=sr,
            n_fft=win,
            n_mels=n_bands,
            win_length=win_ms,
            hop_length=hop_ms,
        )
    if system == "sb_leaf":
        from speechbrain.lobes.features import Leaf

        # LEAF's filters are as long as its window (no separate kernel).
        # Its mel initialisation needs enough FFT bins for 80 bands at
        # 44.1 kHz (the default 512 leaves some filters empty).
        return Leaf(
            out_channels=n_bands,
            window_len=win_ms,
            window_stride=hop_ms,
            sample_rate=sr,
            in_channels=1,
            n_fft=max(512, win),
        )
    raise KeyError(f"unknown front-end {system!r}")


class Timer:
    """Times calls on one device: CUDA events or ``time.perf_counter``.

    Arguments
    ---------
    device : str
        ``"cpu"`` or ``"cuda[:N]"``.
    warmup : int
        Untimed calls first (kernels, plans, compilation).
    repeats : int
        Timed calls at most.
    min_repeats : int
        Timed calls at least.
    budget_s : float
        A measurement stops adding repeats beyond about this many seconds
        (slow cells are timed fewer times, not for minutes).

    Example
    -------
    >>> timer = Timer("cpu", warmup=1, repeats=3, min_repeats=1,
    ...               budget_s=1.0)
    >>> ms, runs, first_s = timer.measure(lambda: sum(range(1000)))
    >>> ms > 0 and 1 <= len(runs) <= 3 and first_s > 0
    True
    """

    def __init__(self, device, warmup, repeats, min_repeats, budget_s):
        self.device = device
        self.cuda = device.startswith("cuda")
        self.warmup = max(1, warmup)
        self.repeats = repeats
        self.min_repeats = min_repeats
        self.budget_s = budget_s

    def _sync(self):
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)

    def _wall(self, fn):
        self._sync()
        start = time.perf_counter()
        fn()
        self._sync()
        return time.perf_counter() - start

    def _one(self, fn):
        """Time one call in ms (CUDA events: GPU time of the stream)."""
        if not self.cuda:
            return 1000 * self._wall(fn)
        import torch

        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def measure(self, fn):
        """Warm up, then time ``fn``.

        Arguments
        ---------
        fn : callable
            The call to time (no arguments).

        Returns
        -------
        float
            Median time in ms.
        list of float
            Every timed call in ms.
        float
            Wall seconds of the first warm-up call (with ``torch.compile``:
            the compilation).
        """
        first_s = self._wall(fn)
        last_s = first_s
        for _ in range(self.warmup - 1):
            last_s = self._wall(fn)
        # The last warm-up call predicts a repeat's cost.
        n = int(self.budget_s / max(last_s, 1e-6))
        n = max(self.min_repeats, min(self.repeats, n))
        runs = [self._one(fn) for _ in range(n)]
        return statistics.median(runs), runs, first_s

    def peak_mib(self, fn):
        """Return the memory one call of ``fn`` adds at its peak (MiB).

        CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation
        before the call (tensors, not the caching allocator's reserve).
        CPU: None (no allocator statistics that would compare).
        """
        if not self.cuda:
            return None
        import torch

        self._sync()
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        fn()
        self._sync()
        return (torch.cuda.max_memory_allocated(self.device) - base) / 2**20


def _release(device, compiled):
    """Free what a cell left: compiled graphs, cached CUDA blocks."""
    import torch

    if compiled:
        torch._dynamo.reset()
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def measure_cell(system, protocol_name, precision, wavs, timer, compile_mode):
    """Measure one front-end x protocol x precision cell.

    Never raises for a failing front-end: errors are recorded in the cell.

    Arguments
    ---------
    system : str
        One of :data:`SYSTEMS`.
    protocol_name : str
        A key of :data:`PROTOCOLS`.
    precision : str
        ``"fp32"``, ``"bf16"`` (autocast) or ``"compile"``
        (``torch.compile``, fp32).
    wavs : torch.Tensor
        ``[batch, samples]`` input on the device.
    timer : Timer
        Timing settings and device.
    compile_mode : str
        ``"on"`` attempts the compile cells, anything else is a reason to
        record them as skipped (``"skipped in small size"``, ...).

    Returns
    -------
    dict
        ``fwd_ms``, ``fwd_bwd_ms`` (None where not measured), ``*_runs_ms``,
        ``*_peak_mib``, ``compile_s`` (compile cells), ``error`` (None or
        the failures' text), ``skipped`` (None or the reason) and ``note``.
    """
    import torch

    device = timer.device
    cell = {
        "system": system,
        "protocol": protocol_name,
        "precision": precision,
        "batch": int(wavs.shape[0]),
        "samples": int(wavs.shape[1]),
        "fwd_ms": None,
        "fwd_bwd_ms": None,
        "fwd_peak_mib": None,
        "fwd_bwd_peak_mib": None,
        "error": None,
        "skipped": None,
        "note": None,
    }
    if precision == "compile" and compile_mode != "on":
        cell["skipped"] = compile_mode
        return cell
    errors = []
    module = None
    try:
        module = build_frontend(system, PROTOCOLS[protocol_name]).to(device)
        module.train()
        params = [p for p in module.parameters() if p.requires_grad]
        if precision == "compile":
            # Default mode, not fullgraph: a graph break is not a failure,
            # the eager fallback is part of what users would get.
            module = torch.compile(module)
    except Exception as exc:  # a build failure is recorded, not raised
        cell["error"] = "build: " + error_text(exc)
        _release(device, precision == "compile")
        return cell
    dev_type = torch.device(device).type

    def autocast():
        if precision == "bf16":
            return torch.autocast(device_type=dev_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def fwd():
        with torch.no_grad(), autocast():
            module(wavs)

    def fwd_bwd():
        for p in params:
            p.grad = None
        with autocast():
            out = module(wavs)
        # Backward outside autocast, as a training loop does.
        out.float().sum().backward()

    compile_s = {}
    measurements = [("fwd", fwd)]
    if params:
        measurements.append(("fwd_bwd", fwd_bwd))
    else:
        cell["note"] = "no trainable parameters: forward only"
    for name, fn in measurements:
        try:
            ms, runs, first_s = timer.measure(fn)
            cell[f"{name}_ms"] = ms
            cell[f"{name}_runs_ms"] = runs
            compile_s[name] = first_s
            cell[f"{name}_peak_mib"] = timer.peak_mib(fn)
        except Exception as exc:  # OOM, compile errors: keep going
            label = "fwd+bwd" if name == "fwd_bwd" else name
            errors.append(f"{label}: {error_text(exc)}")
            cell[f"{name}_ms"] = None
    if precision == "compile":
        # The first call compiles (forward and, with autograd, backward).
        cell["compile_s"] = compile_s
    cell["error"] = "; ".join(errors) or None
    # The closures hold the module: drop it before freeing memory.
    module = params = None
    _release(device, precision == "compile")
    return cell


def run_frontends(device, size, compile_mode, log):
    """Measure every front-end x protocol x precision cell.

    Arguments
    ---------
    device : str
        ``"cpu"`` or ``"cuda[:N]"``.
    size : str
        ``"small"`` or ``"full"`` (batch, clip length and repeats).
    compile_mode : str
        ``"on"`` or the reason the compile cells are skipped.
    log : callable
        Progress messages.

    Returns
    -------
    dict
        ``{"protocols": {name: settings}, "cells": {protocol: {system:
        {precision: cell}}}, "reference": ...}``.
    """
    import torch

    timing = TIMING[size]
    timer = Timer(device, **timing)
    out = {
        "reference": "the fp32 forward time of torchaudio's "
        "MelSpectrogram + log of the same protocol, same process",
        "timing": dict(
            timing,
            method=(
                "CUDA events, median of repeats after warm-up"
                if timer.cuda else
                "time.perf_counter, median of repeats after warm-up"
            ),
        ),
        "peak_memory_method": (
            "torch.cuda.max_memory_allocated minus the allocation before "
            "one untimed call" if timer.cuda else None
        ),
        "protocols": {},
        "cells": {},
    }
    for protocol_name, protocol in PROTOCOLS.items():
        batch, seconds = protocol[size]
        settings = {
            k: v for k, v in protocol.items() if k not in ("full", "small")
        }
        out["protocols"][protocol_name] = dict(
            settings, batch=batch, seconds=seconds
        )
        gen = torch.Generator().manual_seed(0)
        n = int(round(seconds * protocol["sample_rate"]))
        wavs = torch.randn(batch, n, generator=gen).to(device)
        cells = {}
        for system in SYSTEMS:
            cells[system] = {}
            for precision in PRECISIONS:
                cell = measure_cell(
                    system, protocol_name, precision, wavs, timer,
                    compile_mode,
                )
                cells[system][precision] = cell
                log(f"  {protocol_name} {system} {precision}: "
                    + _cell_summary(cell))
        add_mel_ratios(cells)
        out["cells"][protocol_name] = cells
        del wavs
        _release(device, False)
    return out


def _cell_summary(cell):
    """One line: times, or why there are none."""
    if cell["skipped"]:
        return f"skipped ({cell['skipped']})"
    parts = [f"fwd {_fmt(cell['fwd_ms'], '.2f')} ms",
             f"fwd+bwd {_fmt(cell['fwd_bwd_ms'], '.2f')} ms"]
    if cell["error"]:
        parts.append(f"error: {cell['error'][:120]}")
    return ", ".join(parts)


# ----------------------------------------------------------- training step


def run_train_steps(device, size, precisions, log):
    """Time one training step of each recipe's proposal and mel baseline.

    Uses :func:`train_step.bench_steps` (the recipes' own Brain classes
    and ``fit_batch``, the two systems alternated round-robin).

    Arguments
    ---------
    device : str
        ``"cpu"`` or ``"cuda[:N]"``.
    size : str
        ``"small"`` (tiny batches, one timed step) or ``"full"`` (each
        recipe's own training batch size, 10 timed steps).
    precisions : list of str
        Brain precisions (``fp32``, ``bf16``).
    log : callable
        Progress messages.

    Returns
    -------
    dict
        ``{recipe: {precision: {"baseline": row, "proposed": row,
        "ratio": proposal / baseline, "error": ...}}}``.
    """
    ts = _train_step_module()
    steps, warmup = (1, 1) if size == "small" else (10, 2)
    out = {}
    for recipe in RECIPES:
        out[recipe] = {}
        if size == "small":
            batch = SMALL_STEP_BATCH[recipe]
        else:
            # Each recipe's own training batch: what a GPU user runs.
            with tempfile.TemporaryDirectory(prefix="gpu_check_hp_") as tmp:
                batch = int(ts.load_hparams(recipe, ts.MEL, tmp)["batch_size"])
        for precision in precisions:
            entry = {
                "baseline_system": ts.MEL,
                "proposed_system": PROPOSED,
                "batch_size": batch,
                "steps": steps,
                "warmup": warmup,
                "error": None,
            }
            try:
                rows = ts.bench_steps(
                    recipe, [ts.MEL, PROPOSED], precision, device, batch,
                    steps, warmup, log,
                )
                entry["baseline"] = rows[ts.MEL]
                entry["proposed"] = rows[PROPOSED]
                entry["ratio"] = ratio(
                    rows[PROPOSED]["s_per_step"], rows[ts.MEL]["s_per_step"]
                )
            except Exception as exc:  # one recipe's failure is recorded
                entry["error"] = error_text(exc)
                entry["ratio"] = None
            _release(device, False)
            out[recipe][precision] = entry
            log(f"  {recipe} {precision}: ratio "
                f"{_fmt(entry['ratio'], '.2f')}"
                + (f", error: {entry['error']}" if entry["error"] else ""))
    return out


# --------------------------------------------------------------- FSDD runs


def _run_logged(cmd, cwd, log_path, timeout_s, env=None):
    """Run ``cmd`` with its output in ``log_path``; return (rc, wall s).

    On timeout the whole process group (the command and the training
    processes it started) is killed and rc is None.
    """
    start = time.perf_counter()
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
    return rc, time.perf_counter() - start


def _tail(path, n_chars=2000):
    """Return the end of a text file ('' if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n_chars))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def fsdd_command(system, data_folder, device, output_folder, extra=()):
    """Return the command of one whole FSDD cross-validation.

    Arguments
    ---------
    system : str
        A ``recipes/FSDD/hparams`` file name without ``.yaml``.
    data_folder : str
        The FSDD folder.
    device : str
        Training device (``cuda:0``).
    output_folder : str
        Where the folds and ``crossval_results.json`` go.
    extra : sequence of str
        More arguments for ``train.py`` (overrides).

    Returns
    -------
    list of str
        The command (run it in ``recipes/FSDD``).

    Example
    -------
    >>> cmd = fsdd_command("mel_baseline", "/d", "cuda:0", "/o")
    >>> cmd[1].endswith("crossval.py"), cmd[2].endswith("mel_baseline.yaml")
    (True, True)
    >>> cmd[3:5]
    ['--data_folder=/d', '--device=cuda:0']
    """
    folder = os.path.join(ROOT, "recipes", "FSDD")
    return [
        sys.executable,
        os.path.join(folder, "crossval.py"),
        os.path.join(folder, "hparams", f"{system}.yaml"),
        f"--data_folder={data_folder}",
        f"--device={device}",
        f"--output_folder={output_folder}",
        "--noprogressbar",
        *extra,
    ]


def fsdd_skip_reason(device, size, enabled, data_folder):
    """Return why the FSDD runs are skipped, or None to run them.

    Example
    -------
    >>> fsdd_skip_reason("cpu", "full", True, "/nowhere")
    'needs a CUDA device (--device cpu)'
    >>> fsdd_skip_reason("cuda", "small", True, "/nowhere")
    'skipped in small size'
    """
    if not enabled:
        return "disabled by --no_fsdd_run"
    if not device.startswith("cuda"):
        return f"needs a CUDA device (--device {device})"
    if size == "small":
        return "skipped in small size"
    if not os.path.isdir(data_folder):
        return f"FSDD data not found at {data_folder} (--fsdd)"
    return None


def run_fsdd(data_folder, device, work_dir, log, extra=(), timeout_s=3000):
    """Run the whole six-fold FSDD cross-validation of each FSDD system.

    Arguments
    ---------
    data_folder : str
        The FSDD folder.
    device : str
        Training device.
    work_dir : str
        Scratch folder (one subfolder per system).
    log : callable
        Progress messages.
    extra : sequence of str
        More ``train.py`` arguments (e.g. ``--debug`` for a check).
    timeout_s : float
        Per system; a run past it is killed and recorded as an error.

    Returns
    -------
    dict
        ``{system: {"wall_s", "mean_accuracy", "std_accuracy",
        "pooled_accuracy", "fold_accuracy", "returncode", "error"}}``.
    """
    out = {}
    cwd = os.path.join(ROOT, "recipes", "FSDD")
    # The runs start in the recipe folder: a relative path would move.
    data_folder = os.path.abspath(data_folder)
    for system in FSDD_SYSTEMS:
        folder = os.path.join(work_dir, "fsdd", system)
        os.makedirs(folder, exist_ok=True)
        log_path = os.path.join(folder, "gpu_check_stdout.txt")
        cmd = fsdd_command(system, data_folder, device, folder, extra)
        log(f"  FSDD {system}: {shlex.join(cmd)}")
        rc, wall = _run_logged(cmd, cwd, log_path, timeout_s)
        entry = {"command": shlex.join(cmd), "returncode": rc,
                 "wall_s": wall, "error": None}
        results_path = os.path.join(folder, "crossval_results.json")
        if rc == 0 and os.path.isfile(results_path):
            with open(results_path, encoding="utf-8") as f:
                agg = json.load(f)
            for key in ("folds", "fold_accuracy", "mean_accuracy",
                        "std_accuracy", "pooled_accuracy"):
                entry[key] = agg.get(key)
        else:
            entry["error"] = (
                f"timed out after {timeout_s} s" if rc is None else
                f"exit status {rc}" if rc else "no crossval_results.json"
            )
            entry["log_tail"] = _tail(log_path)
        log(f"  FSDD {system}: {wall:.0f} s, accuracy "
            f"{_fmt(entry.get('mean_accuracy'), '.4f')}"
            + (f", error: {entry['error']}" if entry["error"] else ""))
        out[system] = entry
    return out


# ---------------------------------------------------------------- DDP run


def ddp_skip_reason(device):
    """Return why the two-process NCCL run is skipped, or None.

    Example
    -------
    >>> ddp_skip_reason("cpu")
    'needs two or more CUDA GPUs (--device cpu)'
    """
    if not device.startswith("cuda"):
        return f"needs two or more CUDA GPUs (--device {device})"
    import torch

    count = torch.cuda.device_count()
    if count < 2:
        return f"needs two or more CUDA GPUs (found {count})"
    return None


def run_ddp(work_dir, log, backend="nccl", timeout_s=600):
    """Train the DCASE2020 recipe briefly with two torchrun processes.

    A small synthetic set in the official layout (as
    ``tests/test_dcase_recipe.py`` generates it), a narrow FCN and one
    epoch: it checks that NCCL data-parallel training runs end to end and
    reports its wall time and test accuracy.

    Arguments
    ---------
    work_dir : str
        Scratch folder.
    log : callable
        Progress messages.
    backend : str
        ``nccl`` (``gloo`` runs the same on CPU, for a check).
    timeout_s : float
        The run is killed and recorded as an error past this.

    Returns
    -------
    dict
        ``command``, ``returncode``, ``wall_s``, ``accuracy``, ``n``,
        ``error`` (and ``log_tail`` on failure).
    """
    recipe = os.path.join(ROOT, "recipes", "DCASE2020")
    if recipe not in sys.path:
        sys.path.insert(0, recipe)
    from synthetic_dcase2020 import generate_synthetic_dcase

    data = str(generate_synthetic_dcase(
        root=os.path.join(work_dir, "dcase_data"), n_cities=2,
        n_locations_per_city=2, n_segments_per_location=1, duration=1.0,
        seed=0,
    ))
    out_dir = os.path.join(work_dir, "ddp")
    os.makedirs(out_dir, exist_ok=True)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [
        torchrun, "--standalone", "--nproc_per_node=2", "train.py",
        f"hparams/{PROPOSED}.yaml",
        f"--distributed_backend={backend}",
        f"--data_folder={data}",
        f"--output_folder={out_dir}",
        "--number_of_epochs=1",
        # The test suite's tiny DCASE configuration (1 s clips).
        "--fcn_width=0.0625", "--batch_size=4", "--num_workers=0",
        "--crop_frames=24", "--noprogressbar",
    ]
    if backend == "gloo":
        cmd.append("--device=cpu")
    log(f"  DDP: {shlex.join(cmd)}")
    log_path = os.path.join(out_dir, "gpu_check_stdout.txt")
    rc, wall = _run_logged(cmd, recipe, log_path, timeout_s)
    entry = {"command": shlex.join(cmd), "backend": backend,
             "returncode": rc, "wall_s": wall, "error": None}
    results_path = os.path.join(out_dir, "test_results.json")
    if rc == 0 and os.path.isfile(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
        entry["accuracy"] = results.get("accuracy")
        entry["n"] = results.get("n")
    else:
        entry["error"] = (
            f"timed out after {timeout_s} s" if rc is None else
            f"exit status {rc}" if rc else "no test_results.json"
        )
        entry["log_tail"] = _tail(log_path)
    return entry


# ------------------------------------------------------------------ report


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def _markdown(header, rows):
    """Return a markdown table of a header and rows of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def frontend_table(frontends):
    """Return the markdown table of the front-end cells.

    Arguments
    ---------
    frontends : dict
        From :func:`run_frontends`.

    Returns
    -------
    str
        One row per system x protocol x precision.
    """
    rows = []
    for protocol, cells in frontends["cells"].items():
        for system, by_precision in cells.items():
            for precision, cell in by_precision.items():
                note = cell["skipped"] and f"skipped: {cell['skipped']}"
                note = note or cell["error"] or cell["note"] or ""
                peak = cell["fwd_bwd_peak_mib"]
                if peak is None:
                    peak = cell["fwd_peak_mib"]
                rows.append([
                    SYSTEM_NAMES[system], protocol, precision, cell["batch"],
                    _fmt(cell["fwd_ms"], ".2f"),
                    _fmt(cell["fwd_bwd_ms"], ".2f"),
                    _fmt(cell.get("fwd_ratio_to_mel"), ".2f"),
                    _fmt(cell.get("fwd_bwd_ratio_to_mel"), ".2f"),
                    _fmt(peak, ".0f"), note[:100],
                ])
    return _markdown(
        ["system", "protocol", "precision", "batch", "fwd ms", "fwd+bwd ms",
         "fwd x mel", "fwd+bwd x mel", "peak MiB", "note"], rows,
    )


def train_step_table(steps):
    """Return the markdown table of the training steps.

    Arguments
    ---------
    steps : dict
        From :func:`run_train_steps`.

    Returns
    -------
    str
        One row per recipe x precision.
    """
    rows = []
    for recipe, by_precision in steps.items():
        for precision, entry in by_precision.items():
            base = entry.get("baseline", {}).get("s_per_step")
            prop = entry.get("proposed", {}).get("s_per_step")
            rows.append([
                recipe, precision, entry["batch_size"], _fmt(base, ".4f"),
                _fmt(prop, ".4f"), _fmt(entry["ratio"], ".2f"),
                (entry["error"] or "")[:100],
            ])
    return _markdown(
        ["recipe", "precision", "batch", "mel s/step", "proposed s/step",
         "proposed / mel", "note"], rows,
    )


def runs_summary(results):
    """Return text lines on the FSDD and DDP parts (runs or skip reasons)."""
    lines = []
    fsdd = results.get("fsdd")
    if fsdd is not None:
        if fsdd.get("skipped"):
            lines.append(f"FSDD six-fold runs: skipped ({fsdd['skipped']})")
        for system, entry in fsdd.get("systems", {}).items():
            acc = entry.get("mean_accuracy")
            std = entry.get("std_accuracy")
            lines.append(
                f"FSDD {system}: {entry['wall_s']:.0f} s, accuracy "
                f"{_fmt(acc, '.4f')} +- {_fmt(std, '.4f')}"
                + (f" ({entry['error']})" if entry["error"] else "")
            )
    ddp = results.get("ddp")
    if ddp is not None:
        if ddp.get("skipped"):
            lines.append(f"DDP NCCL run: skipped ({ddp['skipped']})")
        else:
            lines.append(
                f"DDP {ddp['backend']} run: {ddp['wall_s']:.0f} s, accuracy "
                f"{_fmt(ddp.get('accuracy'), '.4f')}"
                + (f" ({ddp['error']})" if ddp["error"] else "")
            )
    return lines


# -------------------------------------------------------------------- main


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
    >>> args = parse_args(["--size", "small", "--device", "cpu"])
    >>> args.size, args.device, args.compile, args.parts
    ('small', 'cpu', 'auto', ['frontends', 'train_step', 'fsdd', 'ddp'])
    """
    from speechbrain_relevance.cli import ArgumentParser

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("small", "full"), default="full",
                        help="full: the protocols' sizes (for a GPU); "
                        "small: a CPU smoke run well under a minute")
    parser.add_argument("--device", default=None,
                        help="cpu or cuda[:N] (default: cuda if available)")
    parser.add_argument("--json", default=DEFAULT_JSON,
                        help="where the results go")
    parser.add_argument("--parts", nargs="+", choices=PARTS,
                        default=list(PARTS), help="parts to run")
    parser.add_argument(
        "--compile", choices=("auto", "on", "off"), default="auto",
        help="torch.compile cells: auto attempts them in the full size "
        "and records them as skipped in the small size",
    )
    parser.add_argument("--fsdd", default=DEFAULT_FSDD,
                        help="the FSDD data folder")
    parser.add_argument("--no_fsdd_run", action="store_true",
                        help="skip the two FSDD six-fold runs")
    parser.add_argument("--fsdd_timeout", type=float, default=3000,
                        help="seconds per FSDD cross-validation")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's)")
    parser.add_argument("--work_dir", default=None,
                        help="scratch folder kept after the run (default: "
                        "a temporary folder, removed)")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the check, print the tables and write the JSON.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    dict
        The results written to ``--json``.
    """
    args = parse_args(argv)
    import torch

    from speechbrain_relevance.errors import UserError

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available")
    if device == "cuda":
        # One explicit device for the Brains, the FSDD runs and the name.
        device = "cuda:0"
    if args.threads:
        torch.set_num_threads(args.threads)
    # SpeechBrain logs every Brain's options; the tables are what matters.
    logging.getLogger("speechbrain").setLevel(logging.WARNING)
    if args.compile == "auto":
        compile_mode = "on" if args.size == "full" else "skipped in small size"
    elif args.compile == "on":
        compile_mode = "on"
    else:
        compile_mode = "disabled by --compile off"

    def log(message):
        print(message, file=sys.stderr, flush=True)

    results = {
        "benchmark": "gpu_check",
        "command": "python benchmarks/gpu_check.py " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
        ),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "size": args.size,
        "machine": device_info(device),
        "part_wall_s": {},
    }
    info = results["machine"]
    results["device_name"] = info["device_name"]
    results["torch"] = info["torch"]
    results["torchaudio"] = info["torchaudio"]

    def save():
        # After every part: a run cut short keeps what it measured.
        path = os.path.abspath(args.json)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
            f.write("\n")

    def timed_part(name, fn):
        log(f"== {name}")
        start = time.perf_counter()
        results[name] = fn()
        results["part_wall_s"][name] = time.perf_counter() - start
        save()

    with contextlib.ExitStack() as stack:
        work_dir = args.work_dir or stack.enter_context(
            tempfile.TemporaryDirectory(prefix="gpu_check_")
        )
        # One subfolder per run: a kept work_dir never resumes old folds
        # (which would make the wall times meaningless).
        work_dir = os.path.join(
            work_dir, datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        )
        os.makedirs(work_dir, exist_ok=True)
        if "frontends" in args.parts:
            timed_part("frontends", lambda: run_frontends(
                device, args.size, compile_mode, log))
        if "train_step" in args.parts:
            precisions = (
                ["fp32"] if args.size == "small" else ["fp32", "bf16"]
            )
            timed_part("train_step", lambda: run_train_steps(
                device, args.size, precisions, log))
        if "fsdd" in args.parts:
            reason = fsdd_skip_reason(
                device, args.size, not args.no_fsdd_run, args.fsdd
            )

            def fsdd_part():
                if reason:
                    return {"skipped": reason}
                return {"skipped": None, "data_folder": args.fsdd,
                        "systems": run_fsdd(args.fsdd, device, work_dir, log,
                                            timeout_s=args.fsdd_timeout)}

            timed_part("fsdd", fsdd_part)
        if "ddp" in args.parts:
            reason = ddp_skip_reason(device)
            timed_part("ddp", lambda: {"skipped": reason} if reason else dict(
                run_ddp(work_dir, log), skipped=None))

    print(f"device: {info['device_name']}; torch {info['torch']}, "
          f"torchaudio {info['torchaudio']}; size {args.size}")
    if "frontends" in results:
        results["frontend_table_markdown"] = frontend_table(
            results["frontends"]
        )
        print(results["frontend_table_markdown"])
        print()
    if "train_step" in results:
        results["train_step_table_markdown"] = train_step_table(
            results["train_step"]
        )
        print(results["train_step_table_markdown"])
        print()
    for line in runs_summary(results):
        print(line)
    save()
    print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    from speechbrain_relevance.cli import run_main

    run_main(main)
