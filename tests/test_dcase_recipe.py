"""End-to-end tests of the DCASE2020 recipe on a tiny synthetic dataset.

Every hparams file trains (``--debug``) through the real data preparation;
data-parallel training with 2 gloo processes on CPU; kill -9 mid-run and
resume; every yaml key is used.
"""

import glob
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "DCASE2020"),
]
import synthetic_dcase2020 as synthetic_dcase  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "recipes", "DCASE2020")
HPARAMS = sorted(glob.glob(os.path.join(RECIPE, "hparams", "*.yaml")))
SHARED_SOURCES = [
    os.path.join(RECIPE, "train.py"),
    os.path.join(ROOT, "speechbrain_relevance", "training", "brain.py"),
    os.path.join(ROOT, "speechbrain_relevance", "training", "distributed.py"),
    # The model card reads dataset_card.
    os.path.join(ROOT, "speechbrain_relevance", "export", "card.py"),
]
SMALL = [
    "--fcn_width=0.0625",
    "--batch_size=4",
    "--num_workers=0",
    "--crop_frames=24",
    "--device=cpu",
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dcase")
    return str(
        synthetic_dcase.generate_synthetic_dcase(
            root=str(root),
            n_cities=2,
            n_locations_per_city=2,
            n_segments_per_location=1,
            duration=1.0,
            seed=0,
        )
    )


def load_train_module():
    spec = importlib.util.spec_from_file_location(
        "dcase_train", os.path.join(RECIPE, "train.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_all_paper_hparams_files_exist():
    names = {os.path.basename(p)[:-5] for p in HPARAMS}
    assert names == {
        "mel_baseline",
        "sincnet",
        "cosgauss",
        "relevance_1head",
        "relevance_2head",
        "relevance_3head",
        "relevance_4head",
        "cosgauss_plus",
    }


@pytest.mark.parametrize(
    "hparams", HPARAMS, ids=[os.path.basename(p) for p in HPARAMS]
)
def test_every_yaml_key_is_used(hparams):
    text = open(hparams, encoding="utf-8").read()
    sources = "".join(open(p, encoding="utf-8").read() for p in SHARED_SOURCES)
    keys = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*):", text, flags=re.M)
    unused = []
    for key in keys:
        if key.startswith("__"):
            continue  # executed while loading (e.g. __set_seed)
        in_yaml = f"<{key}>" in text
        in_code = re.search(
            rf"""(\["{key}"\]|\.{key}\b|"{key}")""", sources
        )
        if not (in_yaml or in_code):
            unused.append(key)
    assert not unused, f"{os.path.basename(hparams)}: unused keys {unused}"


@pytest.mark.parametrize(
    "hparams", HPARAMS, ids=[os.path.basename(p) for p in HPARAMS]
)
def test_recipe_debug_run(hparams, dataset, tmp_path):
    train = load_train_module()
    out = tmp_path / "run"
    brain = train.main(
        [
            hparams,
            f"--data_folder={dataset}",
            f"--output_folder={out}",
            "--debug",
            *SMALL,
        ]
    )
    results = json.load(open(out / "test_results.json"))
    test_manifest = json.load(open(out / "manifests" / "test.json"))
    # --debug evaluates a few batches only; the report covers those.
    assert 0 < results["n"] <= len(test_manifest)
    assert 0.0 <= results["accuracy"] <= 1.0
    assert (out / "test_results.md").read_text().count("|") > 20
    log = (out / "train_log.txt").read_text()
    assert "epoch: 1" in log and "epoch: 2" in log
    assert brain.last_summary["accuracy"] == results["accuracy"]


@pytest.mark.parametrize(
    "override",
    [
        ["--split=interleaved"],
        ["--relevance_arch=conv", "--context=3"],
        ["--skip_add=False", "--aligned_specaug=False"],
        ["--n_heads=80"],
        ["--frontend_mode=conv", "--frontend_padding=valid"],
        ["--precision=bf16"],
    ],
    ids=[
        "even-odd",
        "conv-arch",
        "no-skip-nonaligned",
        "80heads",
        "convmode",
        "bf16",
    ],
)
def test_table3_ablations_by_override(override, dataset, tmp_path):
    train = load_train_module()
    out = tmp_path / "run"
    args = [
        os.path.join(RECIPE, "hparams", "relevance_2head.yaml"),
        f"--data_folder={dataset}",
        f"--output_folder={out}",
        "--debug",
        "--debug_batches=1",
        *SMALL,
        *override,
    ]
    if "--frontend_mode=conv" in override:
        # The time-domain reference path is heavy: one clip per batch.
        args[args.index("--batch_size=4")] = "--batch_size=1"
    brain = train.main(args)
    assert (out / "test_results.json").exists()
    if "--n_heads=80" in override:
        assert len(brain.hparams.relevance.heads) == 80


def test_two_stage_training_freezes_loaded_filterbank(dataset, tmp_path):
    train = load_train_module()
    first = tmp_path / "stage1"
    train.main(
        [
            os.path.join(RECIPE, "hparams", "cosgauss.yaml"),
            f"--data_folder={dataset}",
            f"--output_folder={first}",
            "--number_of_epochs=1",
            *SMALL,
        ]
    )
    import torch

    ckpt = glob.glob(str(first / "save" / "CKPT+*" / "compute_features.ckpt"))
    saved = torch.load(ckpt[0], weights_only=True)["theta"]
    second = tmp_path / "stage2"
    brain = train.main(
        [
            os.path.join(RECIPE, "hparams", "relevance_2head.yaml"),
            f"--data_folder={dataset}",
            f"--output_folder={second}",
            f"--pretrained_filterbank={first}",
            "--debug",
            "--debug_batches=1",
            *SMALL,
        ]
    )
    theta = brain.hparams.compute_features.theta
    assert not theta.requires_grad
    assert torch.equal(theta.detach(), saved)


def run_cmd(args, out_dir, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        args,
        cwd=RECIPE,
        env=env,
        stdout=open(os.path.join(out_dir, "stdout.txt"), "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **kw,
    )


def test_ddp_two_processes_gloo_cpu(dataset, tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    proc = run_cmd(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node=2",
            "train.py",
            "hparams/relevance_2head.yaml",
            "--distributed_backend=gloo",
            f"--data_folder={dataset}",
            f"--output_folder={out}",
            "--number_of_epochs=1",
            *SMALL,
        ],
        str(out),
    )
    code = proc.wait(timeout=600)
    log = (out / "stdout.txt").read_text()[-3000:]
    assert code == 0, log
    results = json.load(open(out / "test_results.json"))
    test_manifest = json.load(open(out / "manifests" / "test.json"))
    # Both processes' halves are gathered, duplicates from padding removed.
    assert results["n"] == len(test_manifest), log
    # One process saved the checkpoint.
    ckpts = glob.glob(str(out / "save" / "CKPT+*"))
    assert len(ckpts) == 1, (ckpts, log)


def test_command_leaves_its_process_group_when_done(tmp_path):
    """A finished command closes the torchrun group it joined.

    Left to the interpreter's exit, gloo's group sometimes aborted a
    process after its results were written, and torchrun reported the
    run failed.
    """
    import torch
    import torch.distributed as dist

    from speechbrain_relevance.cli import run_main

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
        world_size=1,
    )
    seen = []

    def main(argv):
        model = torch.nn.parallel.DistributedDataParallel(
            torch.nn.Linear(2, 1)
        )
        model(torch.ones(3, 2)).sum().backward()
        gathered = [None]
        dist.all_gather_object(gathered, argv)
        seen.append(gathered[0])

    try:
        assert run_main(main, ["a"], prog="train.py") == 0
        assert seen == [["a"]]
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def resume_cmd(dataset, out, *extra):
    return [
        sys.executable,
        "train.py",
        "hparams/relevance_2head.yaml",
        f"--data_folder={dataset}",
        f"--output_folder={out}",
        "--number_of_epochs=3",
        *[a for a in SMALL if not a.startswith("--batch_size")],
        "--batch_size=2",
        *extra,
    ]


def kill_when(proc, out, pattern, is_ready=lambda path: True):
    """kill -9 the run once a complete checkpoint matching ``pattern`` is
    on disk (CKPT.yaml is written last, so a listed one is complete)."""
    deadline = time.time() + 400
    while time.time() < deadline:
        if any(is_ready(p) for p in glob.glob(str(out / "save" / pattern))):
            break
        if proc.poll() is not None:
            pytest.fail("training ended before it could be killed")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def finished(proc, out):
    assert proc.wait(timeout=600) == 0, (out / "stdout.txt").read_text()[
        -3000:
    ]
    return json.load(open(out / "test_results.json"))


@pytest.fixture(scope="module")
def uninterrupted(dataset, tmp_path_factory):
    """The reference: the same runs, never interrupted."""
    results = {}
    for name, extra in (("epoch", ()), ("steps", ("--ckpt_interval_steps=2",))):
        out = tmp_path_factory.mktemp(f"uninterrupted_{name}")
        results[name] = finished(
            run_cmd(resume_cmd(dataset, out, *extra), str(out)), out
        )
    return results


def test_resume_after_kill(dataset, tmp_path, uninterrupted):
    out = tmp_path / "resume"
    out.mkdir()
    cmd = resume_cmd(dataset, out)
    log = out / "train_log.txt"
    # Kill -9 as soon as epoch 1's checkpoint is complete, i.e. during
    # epoch 2. Saves interrupted earlier are covered by
    # tests/test_checkpoints.py.
    kill_when(run_cmd(cmd, str(out)), out, "CKPT+*/CKPT.yaml")
    first_log = log.read_text()
    assert "epoch: 2" not in first_log
    results = finished(run_cmd(cmd, str(out)), out)
    lines = log.read_text().splitlines()
    epochs = [ln.split(",")[0] for ln in lines if ln.startswith("epoch:")]
    # Nothing logged before the kill is lost, no epoch is repeated.
    assert log.read_text().startswith(first_log)
    assert epochs == ["epoch: 1", "epoch: 2", "epoch: 3"]
    # The warm-restart schedule continued: epoch 2 ends half-way through
    # its period (lr 0.05), epoch 3 at a restart (lr 0.1).
    assert "epoch: 2, lr: 5.00e-02" in lines[1]
    assert "epoch: 3, lr: 1.00e-01" in lines[2]
    # With augmentation and mixup on, the resumed run is the
    # uninterrupted one: the random generators were checkpointed.
    assert results == uninterrupted["epoch"]


def test_resume_after_kill_within_an_epoch(dataset, tmp_path, uninterrupted):
    out = tmp_path / "resume_steps"
    out.mkdir()
    cmd = resume_cmd(dataset, out, "--ckpt_interval_steps=2")

    def intra_epoch(path):
        return "end-of-epoch: false" in open(path).read()

    kill_when(run_cmd(cmd, str(out)), out, "CKPT+*/CKPT.yaml", intra_epoch)
    results = finished(run_cmd(cmd, str(out)), out)
    assert results == uninterrupted["steps"]
