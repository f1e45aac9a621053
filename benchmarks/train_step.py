r"""Training-step and data-loader throughput of the real recipes.

For every recipe (DCASE2020, UrbanSound8k, FSDD) and every system (one
``hparams/*.yaml`` of the recipe), the hyperparameter file is loaded with
hyperpyyaml and the recipe's own Brain class (imported from its
``train.py``) runs ``fit_batch`` on one synthetic batch of the recipe's
clip length: forward, loss, backward, gradient clipping, optimiser step and
learning-rate step, under the Brain's own ``--precision`` autocast. The
systems of a recipe are built once and alternated round-robin in one
process (a warm-up step each first, then ``--steps`` timed rounds), so a
slow phase of a shared machine hits all systems alike; the median is kept.

The arithmetic of a step is counted on one more untimed step with
``torch.utils.flop_counter.FlopCounterMode``: matrix products and
convolutions, forward and backward, plus the CPU LSTM kernels through
:func:`rnn_flops`; FFTs, element-wise operations and pooling are not
counted. A learnable system whose FLOP ratio to the mel baseline is well
above 1 does more arithmetic per step (the relevance network), not the
same arithmetic more slowly.

Peak memory is measured on one extra, untimed step per system:

* CPU: freed heap pages are returned to the system (``malloc_trim``), the
  kernel's resident-size high-water mark is reset (``/proc/self/clear_refs``)
  and the step's peak is ``VmHWM`` minus ``VmRSS`` just before the step,
  i.e. the resident memory the step adds on top of the built model, its
  optimiser state and the batch (activations, gradients, temporaries).
* CUDA: ``torch.cuda.max_memory_allocated`` minus the memory allocated
  before the step (tensors only, not the caching allocator's reserve).

The loader is timed separately: small synthetic data in the official
layouts (``recipes/DCASE2020/synthetic_dcase2020.py`` and
``recipes/UrbanSound8k/synthetic_urbansound8k.py``; the vendored FSDD
subset in ``tests/data/fsdd``)
goes through the recipe's ``prepare_manifests`` and ``dataio_prep`` into
SpeechBrain's ``make_dataloader`` with the recipe's training loader options
(its ``batch_size`` and ``num_workers``). The training manifest is repeated
so that the loader yields ``--loader_batches`` batches after the first; the
rate is taken after the first batch (worker start-up is reported apart).
Files sit in the page cache, so this is decoding, resampling and collation,
not disk. It is compared with the clips per second training consumes,
``batch_size / step time``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/train_step.py          # CPU
    python benchmarks/train_step.py --device cuda --precision fp32 fp16 bf16
    python benchmarks/train_step.py --recipes FSDD --systems mel_baseline \
        cosgauss --steps 2 --out /tmp/x.json

Targets (issue "Training throughput"): every learnable system's step at
most 1.05x its recipe's mel-baseline step; the loader never the bottleneck
at the default ``num_workers``.

Authors
 * speechbrain-relevance developers
"""

import contextlib
import ctypes
import datetime
import gc
import importlib.util
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time

from speechbrain_relevance.cli import ArgumentParser, run_main
from speechbrain_relevance.errors import UserError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(HERE, "results", "train_step.json")
FSDD_SUBSET = os.path.join(ROOT, "tests", "data", "fsdd")

#: Systems every recipe has; the first is the reference of the ratios.
MEL = "mel_baseline"
COMMON_SYSTEMS = (MEL, "cosgauss", "relevance_2head", "cosgauss_plus")

#: Per recipe: Brain class in train.py, overrides needed to load the yaml,
#: default benchmark batch (small: one CPU thread), and where the clip
#: length comes from.
RECIPES = {
    "DCASE2020": {
        "brain": "SceneBrain",
        "overrides": {},
        "batch_size": 2,
        # Every official clip is 10 s; the yaml has no length key.
        "clip_seconds": lambda hp: 10.0,
    },
    "UrbanSound8k": {
        "brain": "UrbanSoundBrain",
        "overrides": {"test_fold": 1},
        "batch_size": 4,
        "clip_seconds": lambda hp: float(hp["clip_duration"]),
    },
    "FSDD": {
        "brain": "DigitBrain",
        "overrides": {"test_fold": "theo"},
        "batch_size": 32,
        # Clips are cropped to max_duration and a batch is padded to its
        # longest clip: the upper bound of a batch's length.
        "clip_seconds": lambda hp: float(hp["max_duration"]),
    },
}


# ---------------------------------------------------------------- helpers


def recipe_folder(recipe):
    """Return ``recipes/<recipe>``."""
    return os.path.join(ROOT, "recipes", recipe)


def recipe_systems(recipe):
    """Return the system names (hparams files) of a recipe, sorted."""
    folder = os.path.join(recipe_folder(recipe), "hparams")
    return sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".yaml"))


def load_train_module(recipe):
    """Import a recipe's ``train.py`` under a unique module name."""
    folder = recipe_folder(recipe)
    name = f"_train_step_{recipe.lower()}"
    if name in sys.modules:
        return sys.modules[name]
    # train.py imports its sibling prepare_*.py by plain name.
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(folder, "train.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def load_hparams(recipe, system, out_dir, data_folder=None):
    """Load ``recipes/<recipe>/hparams/<system>.yaml`` with hyperpyyaml."""
    from hyperpyyaml import load_hyperpyyaml

    overrides = {
        "output_folder": out_dir,
        "data_folder": data_folder or out_dir,
        **RECIPES[recipe]["overrides"],
    }
    path = os.path.join(recipe_folder(recipe), "hparams", system + ".yaml")
    with open(path, encoding="utf-8") as f:
        return load_hyperpyyaml(f, overrides)


def _proc_kib(field):
    """Read a ``/proc/self/status`` field in KiB (0 if absent)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _trim_heap():
    """Give freed heap pages back to the system (glibc only)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak_rss():
    """Reset ``VmHWM`` to the current resident size; False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_name():
    """Return the CPU model name."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(device, threads):
    """Describe the machine, library versions and thread settings."""
    import speechbrain
    import torch

    info = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "speechbrain": speechbrain.__version__,
        "torch_threads": threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "device": device,
    }
    with contextlib.suppress(OSError, ValueError):
        info["memory_gib"] = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
            1,
        )
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# ---------------------------------------------------------- training step


class StepRunner:
    """One system's Brain, ready to run ``fit_batch`` on a fixed batch.

    Arguments
    ---------
    recipe : str
        Recipe name (a key of :data:`RECIPES`).
    system : str
        Hyperparameter file name without ``.yaml``.
    precision : str
        ``fp32``, ``bf16`` or ``fp16`` (SpeechBrain's ``--precision``).
    device : str
        ``cpu`` or ``cuda[:N]``.
    batch_size : int
        Clips in the synthetic batch.
    out_dir : str
        Scratch output folder of the Brain.
    """

    def __init__(self, recipe, system, precision, device, batch_size,
                 out_dir):
        import speechbrain as sb
        import torch
        from speechbrain.dataio.batch import PaddedBatch

        module = load_train_module(recipe)
        hp = load_hparams(recipe, system, out_dir)
        brain_class = getattr(module, RECIPES[recipe]["brain"])
        self.brain = brain_class(
            modules=hp["modules"],
            opt_class=hp["opt_class"],
            hparams=hp,
            run_opts={
                "device": device,
                "precision": precision,
                "noprogressbar": True,
            },
            checkpointer=hp["checkpointer"],
        )
        # What Brain.fit does before its first batch.
        self.brain.on_fit_start()
        self.brain.modules.train()
        self.brain.on_stage_start(sb.Stage.TRAIN, 1)
        hp["epoch_counter"].current = 1
        # The LR schedule steps with fractional epochs of this many batches.
        self.brain.n_train_batches = 1000
        self.clip_seconds = RECIPES[recipe]["clip_seconds"](hp)
        self.sample_rate = int(hp["sample_rate"])
        n = int(round(self.clip_seconds * self.sample_rate))
        n_classes = len(hp["labels"])
        gen = torch.Generator().manual_seed(0)
        items = []
        for i in range(batch_size):
            # Noise peak-normalised like the recipes' audio pipelines.
            wav = torch.randn(n, generator=gen)
            items.append({
                "id": f"clip{i}",
                "sig": wav / (wav.abs().max() + 1e-4),
                "label": torch.tensor([i % n_classes]),
                "group": "a",
            })
        self.batch = PaddedBatch(items)
        self.batch_size = batch_size
        self.device = device
        self.n_params = sum(
            p.numel() for p in self.brain.modules.parameters()
        )

    def _sync(self):
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)

    def step(self):
        """Run one training step; return its wall time in seconds."""
        self._sync()
        start = time.perf_counter()
        loss = self.brain.fit_batch(self.batch)
        self._sync()
        elapsed = time.perf_counter() - start
        if not bool(loss.isfinite()):
            raise RuntimeError("non-finite loss in the benchmark step")
        return elapsed

    def peak_memory_mib(self):
        """Run one untimed step; return the memory it adds (MiB) or None."""
        if self.device.startswith("cuda"):
            import torch

            self._sync()
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            self.step()
            return (torch.cuda.max_memory_allocated(self.device) - base) / 2**20
        _trim_heap()
        if not _reset_peak_rss():
            return None
        base = _proc_kib("VmRSS")
        self.step()
        return max(0, _proc_kib("VmHWM") - base) / 1024

    def gflop(self):
        """Run one untimed step; return the GFLOPs it counts (see module)."""
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False, custom_mapping=rnn_flops()) as fc:
            self.step()
        return fc.get_total_flops() / 1e9


def rnn_flops():
    """FLOP formulas of the CPU LSTM kernels, which ``FlopCounterMode`` lacks.

    One layer and direction: ``2 * T * B * 4H * (input + H)`` forward (the
    gate products) and twice that backward (input and weight gradients).

    Returns
    -------
    dict
        ``{aten op: formula}`` for ``FlopCounterMode(custom_mapping=...)``.
    """
    import torch

    aten = torch.ops.aten

    def products(inp, w_ih, w_hh, batch_first):
        steps, batch = (inp[1], inp[0]) if batch_first else inp[:2]
        return 2 * steps * batch * w_ih[0] * (w_ih[1] + w_hh[1])

    # Arguments arrive as shapes (tensors) and values, in schema order:
    # batch_first is the 15th argument forward and the 22nd backward.
    def forward(inp, w_ih, w_hh, *rest, out_shape=None, **kwargs):
        return products(inp, w_ih, w_hh, rest[11])

    def backward(inp, w_ih, w_hh, *rest, out_shape=None, **kwargs):
        return 2 * products(inp, w_ih, w_hh, rest[18])

    return {
        aten.mkldnn_rnn_layer: forward,
        aten.mkldnn_rnn_layer_backward: backward,
    }


def bench_steps(recipe, systems, precision, device, batch_size, steps,
                warmup, log):
    """Time ``fit_batch`` of every system, round-robin; measure peaks.

    Returns
    -------
    dict
        ``{system: {"s_per_step", "step_times_s", "peak_mem_mib", ...}}``.
    """
    with tempfile.TemporaryDirectory(prefix="train_step_") as tmp:
        runners = {}
        for system in systems:
            runners[system] = StepRunner(
                recipe, system, precision, device, batch_size,
                os.path.join(tmp, system),
            )
        for _ in range(warmup):
            for runner in runners.values():
                runner.step()
        times = {s: [] for s in systems}
        for i in range(steps):
            for system, runner in runners.items():
                times[system].append(runner.step())
            log(f"  {recipe} {precision} round {i + 1}/{steps}")
        results = {}
        for system, runner in runners.items():
            results[system] = {
                "s_per_step": statistics.median(times[system]),
                "step_times_s": times[system],
                "peak_mem_mib": runner.peak_memory_mib(),
                "gflop_per_step": runner.gflop(),
                "batch_size": batch_size,
                "clip_seconds": runner.clip_seconds,
                "sample_rate": runner.sample_rate,
                "n_params": runner.n_params,
            }
        del runners
        gc.collect()
    return results


# ----------------------------------------------------------------- loader


def synthetic_data(recipe, root):
    """Return a data folder of the recipe in its official layout."""
    if recipe == "DCASE2020":
        sys.path.insert(0, os.path.join(ROOT, "recipes", "DCASE2020"))
        from synthetic_dcase2020 import generate_synthetic_dcase

        return str(generate_synthetic_dcase(
            root=os.path.join(root, "dcase"), n_cities=2,
            n_locations_per_city=2, n_segments_per_location=1,
            duration=10.0, seed=0,
        ))
    if recipe == "UrbanSound8k":
        sys.path.insert(0, os.path.join(ROOT, "recipes", "UrbanSound8k"))
        from synthetic_urbansound8k import generate_synthetic_urbansound

        # Sources at 8 to 96 kHz, mono and stereo, 8 to 32 bit.
        return str(generate_synthetic_urbansound(
            os.path.join(root, "us8k"), clips_per_class_per_fold=1, seed=0,
        ))
    return FSDD_SUBSET


def _repeat_manifest(path, n_clips, out_path):
    """Write a manifest repeating ``path``'s entries up to ``n_clips``."""
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    if not entries:
        raise UserError(f"empty training manifest {path}")
    keys = list(entries)
    repeated = {}
    for i in range(n_clips):
        key = keys[i % len(keys)]
        repeated[f"{key}#{i}"] = entries[key]
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(repeated, f)
    return len(keys)


def time_loader(dataset, loader_opts, n_batches):
    """Iterate a loader; return start-up time and steady clips/s."""
    from speechbrain.dataio.dataloader import make_dataloader

    loader = make_dataloader(dataset, **loader_opts)
    start = time.perf_counter()
    first = None
    clips = 0
    for batch in loader:
        if first is None:
            first = time.perf_counter()
            continue
        clips += len(batch.id)
        if clips >= n_batches * loader_opts["batch_size"]:
            break
    end = time.perf_counter()
    del loader
    return {
        "first_batch_s": first - start,
        "clips_per_s": clips / max(end - first, 1e-9),
        "clips_timed": clips,
    }


def bench_loader(recipe, data_root, n_batches, num_workers, log):
    """Clips/s of the recipe's audio pipeline and training loader."""
    module = load_train_module(recipe)
    data_folder = synthetic_data(recipe, data_root)
    out_dir = os.path.join(data_root, f"{recipe}_run")
    hp = load_hparams(recipe, MEL, out_dir, data_folder)
    manifests = module.prepare_manifests(hp)
    opts = dict(hp["train_dataloader_opts"])
    if num_workers is not None:
        opts["num_workers"] = num_workers
    repeated = os.path.join(data_root, f"{recipe}_train_repeated.json")
    n_distinct = _repeat_manifest(
        manifests["train"], (n_batches + 1) * opts["batch_size"], repeated
    )
    dataset = module.dataio_prep(hp, {"train": repeated})["train"]
    log(f"  {recipe} loader, num_workers={opts['num_workers']}")
    result = time_loader(dataset, opts, n_batches)
    # The same pipeline in the main process: the cost of one clip.
    result_0 = result
    if opts["num_workers"]:
        log(f"  {recipe} loader, num_workers=0")
        result_0 = time_loader(
            dataset, dict(opts, num_workers=0), max(1, n_batches // 2)
        )
    out = {
        "num_workers": opts["num_workers"],
        "batch_size": opts["batch_size"],
        "distinct_files": n_distinct,
        "data": os.path.relpath(data_folder, ROOT)
        if recipe == "FSDD" else f"synthetic {recipe} (official layout)",
        **result,
        "clips_per_s_num_workers_0": result_0["clips_per_s"],
    }
    if recipe == "UrbanSound8k":
        out["per_source_rate"] = urbansound_rates(
            module, manifests["train"], hp
        )
    return out


def urbansound_rates(module, manifest, hp):
    """Per source rate: kernel build and per-clip load time, one process."""
    import soundfile as sf

    from speechbrain_relevance.data import audio as audio_io

    with open(manifest, encoding="utf-8") as f:
        entries = json.load(f)
    by_rate = {}
    for entry in entries.values():
        by_rate.setdefault(sf.info(entry["wav"]).samplerate, []).append(
            entry["wav"]
        )
    load = module.load_urbansound_clip
    rate, duration = hp["sample_rate"], hp["clip_duration"]
    rows = {}
    for source_rate, paths in sorted(by_rate.items()):
        # First file with an empty kernel cache, as in a fresh worker.
        audio_io._resampler.cache_clear()
        t0 = time.perf_counter()
        load(paths[0], rate, duration)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        repeats = 0
        while repeats < 3 or time.perf_counter() - t0 < 0.3:
            load(paths[repeats % len(paths)], rate, duration)
            repeats += 1
        warm = (time.perf_counter() - t0) / repeats
        rows[str(source_rate)] = {
            "files": len(paths),
            "first_clip_s": cold,
            "clip_s_cached_kernel": warm,
            "clips_per_s_cached_kernel": 1.0 / warm,
        }
    return rows


# ------------------------------------------------------------------ report


def summarize(results):
    """Add ratios to mel and loader-vs-consumption to ``results``."""
    for recipe in results["recipes"].values():
        loader = recipe.get("loader")
        for precision in recipe["precisions"]:
            block = recipe["systems"]
            mel = block.get(MEL, {}).get(precision)
            for system in block.values():
                row = system.get(precision)
                if row is None:
                    continue
                row["ratio_to_mel"] = (
                    row["s_per_step"] / mel["s_per_step"] if mel else None
                )
                row["flop_ratio_to_mel"] = (
                    row["gflop_per_step"] / mel["gflop_per_step"]
                    if mel
                    else None
                )
                row["consumed_clips_per_s"] = (
                    row["batch_size"] / row["s_per_step"]
                )
                if loader:
                    row["loader_clips_per_s"] = loader["clips_per_s"]
                    row["loader_is_bottleneck"] = (
                        loader["clips_per_s"] < row["consumed_clips_per_s"]
                    )


def table(results):
    """Return the markdown table of the results."""
    lines = [
        "| recipe | system | precision | batch | s/step | x mel | "
        "GFLOP/step | x mel GFLOP | peak MiB | consumed clips/s | "
        "loader clips/s |",
        "|" + "---|" * 11,
    ]

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    for name, recipe in results["recipes"].items():
        for precision in recipe["precisions"]:
            for system, rows in recipe["systems"].items():
                row = rows[precision]
                lines.append(
                    f"| {name} | {system} | {precision} | "
                    f"{row['batch_size']} | {row['s_per_step']:.3f} | "
                    f"{fmt(row.get('ratio_to_mel'), '.2f')} | "
                    f"{row['gflop_per_step']:.2f} | "
                    f"{fmt(row.get('flop_ratio_to_mel'), '.2f')} | "
                    f"{fmt(row['peak_mem_mib'], '.0f')} | "
                    f"{row['consumed_clips_per_s']:.1f} | "
                    f"{fmt(row.get('loader_clips_per_s'), '.1f')} |"
                )
    return "\n".join(lines)


def loader_table(results):
    """Return the markdown table of the loader measurements."""
    lines = [
        "| recipe | num_workers | batch | loader clips/s | "
        "clips/s, 0 workers | first batch s |",
        "|" + "---|" * 6,
    ]
    for name, recipe in results["recipes"].items():
        loader = recipe.get("loader")
        if loader:
            lines.append(
                f"| {name} | {loader['num_workers']} | "
                f"{loader['batch_size']} | {loader['clips_per_s']:.1f} | "
                f"{loader['clips_per_s_num_workers_0']:.1f} | "
                f"{loader['first_batch_s']:.2f} |"
            )
    return "\n".join(lines)


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
    >>> args = parse_args(["--recipes", "FSDD", "--steps", "2"])
    >>> args.recipes, args.steps, args.precision
    (['FSDD'], 2, None)
    """
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--recipes", nargs="+", choices=sorted(RECIPES),
        default=sorted(RECIPES),
    )
    parser.add_argument(
        "--systems", nargs="+", default=None,
        help="hparams files to time (default: every file of each recipe; "
        f"'common' for {' '.join(COMMON_SYSTEMS)}); names a recipe lacks "
        "are skipped; the mel baseline is always added as the reference "
        "of the ratios",
    )
    parser.add_argument(
        "--precision", nargs="+", choices=("fp32", "bf16", "fp16"),
        default=None,
        help="training precisions (default: fp32 bf16 on CPU, "
        "fp32 fp16 bf16 on CUDA); fp16 needs CUDA",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--batch_size", type=int, default=None,
        help="clips per benchmark batch (default per recipe: "
        + ", ".join(f"{k} {v['batch_size']}" for k, v in RECIPES.items())
        + ")",
    )
    parser.add_argument("--steps", type=int, default=5,
                        help="timed rounds (the median is kept)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads on CPU")
    parser.add_argument("--no_loader", action="store_true",
                        help="skip the data-loader measurements")
    parser.add_argument("--loader_batches", type=int, default=4,
                        help="timed loader batches (after the first)")
    parser.add_argument(
        "--num_workers", type=int, default=None,
        help="loader workers (default: each recipe's own num_workers)",
    )
    parser.add_argument("--data_root", default=None,
                        help="where the synthetic data go (a temp folder)")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.loader_batches < 1:
        parser.error("--steps and --loader_batches >= 1, --warmup >= 0")
    return args


def main(argv=None):
    """Run the benchmark, print the tables and write the JSON.

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

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise UserError(f"--device {args.device}: CUDA is not available")
    precisions = args.precision or (
        ["fp32", "fp16", "bf16"] if cuda else ["fp32", "bf16"]
    )
    if "fp16" in precisions and not cuda:
        raise UserError("--precision fp16 needs a CUDA device; use bf16 "
                        "on CPU")
    torch.set_num_threads(args.threads)
    # SpeechBrain logs every Brain's options; the table is what matters.
    logging.getLogger("speechbrain").setLevel(logging.WARNING)

    def log(message):
        print(message, file=sys.stderr, flush=True)

    results = {
        "benchmark": "train_step",
        "command": "python benchmarks/train_step.py "
        + " ".join(shlex.quote(a) for a in (
            sys.argv[1:] if argv is None else argv
        )),
        "date": datetime.date.today().isoformat(),
        "machine": machine_info(args.device, torch.get_num_threads()),
        "settings": {
            "steps": args.steps,
            "warmup": args.warmup,
            "precisions": precisions,
            "loader_batches": args.loader_batches,
        },
        "peak_mem_method": (
            "torch.cuda.max_memory_allocated minus the allocation before "
            "the step" if cuda else
            "resident memory added by one training step: VmHWM after "
            "malloc_trim and a /proc/self/clear_refs reset, minus VmRSS "
            "before the step (model, optimiser state and batch excluded)"
        ),
        "recipes": {},
    }
    with tempfile.TemporaryDirectory(prefix="train_step_data_") as tmp:
        data_root = args.data_root or tmp
        for recipe in args.recipes:
            available = recipe_systems(recipe)
            if args.systems is None or args.systems == ["all"]:
                wanted = available
            elif args.systems == ["common"]:
                wanted = list(COMMON_SYSTEMS)
            else:
                wanted = list(args.systems)
            systems = [MEL] + [s for s in wanted if s != MEL]
            missing = [s for s in systems if s not in available]
            if missing:
                # A system may exist in one recipe only (e.g. sincnet).
                if args.systems is not None and len(missing) == len(wanted):
                    raise UserError(
                        f"{recipe} has none of {missing}; it has {available}"
                    )
                systems = [s for s in systems if s in available]
            batch = args.batch_size or RECIPES[recipe]["batch_size"]
            entry = {
                "precisions": precisions,
                "batch_size": batch,
                "systems": {s: {} for s in systems},
            }
            for precision in precisions:
                log(f"{recipe}: {precision}, systems {systems}")
                rows = bench_steps(
                    recipe, systems, precision, args.device, batch,
                    args.steps, args.warmup, log,
                )
                for system, row in rows.items():
                    entry["systems"][system][precision] = row
            if not args.no_loader:
                entry["loader"] = bench_loader(
                    recipe, data_root, args.loader_batches, args.num_workers,
                    log,
                )
            results["recipes"][recipe] = entry
    summarize(results)
    results["table_markdown"] = table(results)
    results["loader_table_markdown"] = loader_table(results)
    machine = results["machine"]
    print(f"{machine['cpu']}, torch {machine['torch']}, "
          f"{machine['torch_threads']} thread(s), device {args.device}")
    print(results["table_markdown"])
    if not args.no_loader:
        print()
        print(results["loader_table_markdown"])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    run_main(main)
