"""Data-parallel training never leaves a process waiting for ever (issue 29).

The hang: at a checkpoint save, the main process puts the meta file in
place last; the other process could list the checkpoints before that,
decide to delete none where the main one deleted one, and the two then
waited on collective operations the other never ran (the deletion's
broadcast against the next barrier). The scenarios of
``tests/ddp_helpers.py`` make the main process slow at exactly that point,
so the race happens every time instead of in a quarter of the runs, and
compare the collective operations of the two processes.

Each process runs with a collective time limit, and each subprocess with
a timeout whose failure names the stage reached.
"""

import json
import os
import re
import subprocess
import sys

import pytest

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "DCASE2020"),
    os.path.join(_RECIPES, "UrbanSound8k"),
]
import synthetic_dcase2020 as synthetic_dcase  # noqa: E402
import synthetic_urbansound8k as synthetic_urbansound  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPERS = os.path.join(ROOT, "tests", "ddp_helpers.py")
FSDD_DATA = os.path.join(ROOT, "tests", "data", "fsdd")


def _env(rank=None, world=2):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, env.get("PYTHONPATH")) if p
    )
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        env.pop(key, None)
    if rank is not None:
        env.update(RANK=str(rank), LOCAL_RANK=str(rank),
                   WORLD_SIZE=str(world))
    return env


def _last_stage(text):
    """The last stage a log names (for a subprocess that had to be killed)."""
    marks = re.findall(r"(?:stage '([^']+)'|ddp-plan: (.+))", text)
    return marks[-1] if marks else "(none logged)"


def _two_processes(args, timeout):
    """Run ``ddp_helpers.py`` as rank 0 and rank 1; (codes, stderrs)."""
    procs = [
        subprocess.Popen(
            [sys.executable, HELPERS, *args], env=_env(rank),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for rank in (0, 1)
    ]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            out, err = proc.communicate()
            pytest.fail(
                f"{args[0]}: no result after {timeout} s; last stage "
                f"{_last_stage(err)}:\n{err[-2000:]}"
            )
        results.append((proc.returncode, err))
    return [r[0] for r in results], [r[1] for r in results]


def test_pruning_checkpoints_runs_the_same_collectives_when_main_lags(
    tmp_path,
):
    folder = tmp_path / "save"
    out = tmp_path / "record"
    codes, errs = _two_processes(
        ["checkpoints", str(tmp_path / "store"), str(folder), str(out)],
        timeout=120,
    )
    assert codes == [0, 0], errs
    records = [
        json.loads((tmp_path / f"record.{rank}").read_text())
        for rank in (0, 1)
    ]
    # The same collective operations in the same order on both...
    assert records[0]["calls"] == records[1]["calls"]
    # ...and the same checkpoints seen: the averaged one, alone.
    for record in records:
        assert record["n_checkpoints"] == 1
        assert record["latest_epoch"] == 3


def test_a_collective_that_waits_too_long_names_the_stage(tmp_path):
    codes, errs = _two_processes(
        ["timeout", str(tmp_path / "store"), "epoch 3: saving its checkpoint"],
        timeout=60,
    )
    assert codes[0] == 1, errs
    lines = errs[0].strip().splitlines()
    assert "Traceback" not in errs[0]
    assert lines[-1].startswith("train.py: error: rank 0 of 2: waited more "
                                "than ddp_timeout_s=2 s"), errs[0]
    assert "at stage 'epoch 3: saving its checkpoint'" in lines[-1]


def test_a_process_that_stops_is_named_with_the_stage(tmp_path):
    codes, errs = _two_processes(
        ["lost", str(tmp_path / "store"), "epoch 1: validation"],
        timeout=60,
    )
    assert codes == [1, 3], errs
    assert "Traceback" not in errs[0]
    last = errs[0].strip().splitlines()[-1]
    assert last.startswith("train.py: error: rank 0 of 2: another process "
                           "stopped"), errs[0]
    assert "stage 'epoch 1: validation'" in last


def test_uneven_batch_counts_stop_every_process(tmp_path):
    codes, errs = _two_processes(
        ["uneven", str(tmp_path / "store"), "epoch 2: training"],
        timeout=60,
    )
    assert codes == [1, 1], errs
    for err in errs:
        last = err.strip().splitlines()[-1]
        assert "Traceback" not in err
        assert last.startswith("train.py: error: the processes disagree on "
                               "the number of batches (rank 0: 3, rank 1: "
                               "2) at stage 'epoch 2: training'"), err


@pytest.fixture(scope="module")
def recipe_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp_data")
    dcase = synthetic_dcase.generate_synthetic_dcase(
        root=str(root / "dcase"), n_cities=2, n_locations_per_city=2,
        n_segments_per_location=1, duration=1.0, seed=0,
    )
    us8k = synthetic_urbansound.generate_synthetic_urbansound(
        str(root / "us8k"), clips_per_class_per_fold=1, seed=0,
        max_duration=0.3, min_duration=0.1,
    )
    return {"dcase": str(dcase), "us8k": str(us8k)}


def _plan(data, out):
    """Every recipe's proposed system and its baseline, small and short."""
    dcase = ["--fcn_width=0.0625", "--batch_size=4", "--crop_frames=24"]
    us8k = ["--test_fold=4", "--batch_size=16", "--clip_duration=0.3",
            "--n_bands=12", "--conv_channels=2", "--lstm_size=8",
            "--lstm_layers=1", "--fc_size=8"]
    fsdd = ["--test_fold=theo", "--cnn_channels=[4]", "--n_bands=16"]
    systems = [
        ("DCASE2020", data["dcase"], dcase),
        ("UrbanSound8k", data["us8k"], us8k),
        ("FSDD", FSDD_DATA, fsdd),
    ]
    runs = []
    for recipe, folder, extra in systems:
        for yaml in ("relevance_2head", "mel_baseline"):
            name = f"{recipe}/{yaml}"
            runs.append({
                "name": name,
                "recipe": recipe,
                "argv": [
                    os.path.join(ROOT, "recipes", recipe, "hparams",
                                 f"{yaml}.yaml"),
                    f"--data_folder={folder}",
                    f"--output_folder={out / recipe / yaml}",
                    "--number_of_epochs=2", "--num_workers=0",
                    "--device=cpu", "--noprogressbar",
                    "--distributed_backend=gloo", "--ddp_timeout_s=60",
                    *extra,
                ],
            })
    return runs


def test_two_processes_train_every_recipe_system(recipe_data, tmp_path):
    """Proposed system and baseline of each recipe, main process lagging.

    Rank 0 is made slow (0.5 s) to finish every checkpoint: before the
    fix this hung at the first checkpoint pruned (the FSDD runs prune at
    every averaging; the others when an epoch is not the best). A hang
    now ends in an error naming the stage (ddp_timeout_s=60), and the
    subprocess's own timeout names the last stage logged.
    """
    plan = {
        "runs": _plan(recipe_data, tmp_path / "runs"),
        "ddp_timeout_s": 60,
        "delay_s": 0.5,
        "out": str(tmp_path / "record"),
    }
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--standalone",
             "--nproc_per_node=2", HELPERS, "recipes", str(plan_file)],
            cwd=str(tmp_path), env=_env(), stdout=f,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            code = proc.wait(timeout=480)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            text = log.read_text()
            pytest.fail(
                "two-process training hung; last stage "
                f"{_last_stage(text)}:\n{text[-3000:]}"
            )
    text = log.read_text()
    records = []
    for rank in (0, 1):
        path = tmp_path / f"record.{rank}"
        assert path.exists(), text[-3000:]
        records.append(json.loads(path.read_text()))
    failed = records[0]["failed"] or records[1]["failed"]
    assert failed is None, (failed, text[-3000:])
    assert code == 0, text[-3000:]
    names = [run["name"] for run in plan["runs"]]
    for record in records:
        assert list(record["runs"]) == names
    for name in names:
        calls = [r["runs"][name]["calls"] for r in records]
        assert calls[0] == calls[1], name
    for run in plan["runs"]:
        out = [a for a in run["argv"] if a.startswith("--output_folder=")]
        results = list(
            (tmp_path / "runs").glob(f"{run['name']}/**/test_results.json")
        )
        assert len(results) == 1, (run["name"], out)
        # One checkpoint left: the best (or the averaged) one.
        saves = list(results[0].parent.glob("save/CKPT+*"))
        assert len(saves) >= 1, run["name"]
