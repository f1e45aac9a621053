"""Two-process scenarios for the data-parallel tests (issue 29).

Run as a script, one process per rank; ``tests/test_ddp_reliability.py``
starts them. Nothing happens on import.

Scenarios (the first argument):

* ``checkpoints <store> <folder> <out.json>``: both processes save and
  prune checkpoints in one folder while the main one is slow to put each
  checkpoint's meta file in place (the window in which the other process
  used to list the checkpoints without the new one, decide other
  deletions, and wait for ever on collectives the main process never
  ran). Each records the collective operations it ran.
* ``timeout <store> <stage>``: rank 1 skips a barrier that rank 0 waits
  in, inside ``run_main``, at stage ``<stage>``.
* ``lost <store> <stage>``: rank 1 exits while rank 0 waits.
* ``uneven <store> <stage>``: the processes count different numbers of
  training batches.
* ``recipes <plan.json>`` (under ``torchrun``): every recipe system of the
  plan trains in turn in the same two processes, rank 0 slow to finish
  its checkpoints; the collective operations of the two processes are
  compared.

The rank and world size come from ``RANK``/``WORLD_SIZE`` (as under
``torchrun``).
"""

import datetime
import functools
import importlib.util
import json
import os
import sys
import time

#: torch.distributed functions the recipes' code calls (directly or
#: through SpeechBrain's helpers).
COLLECTIVES = (
    "barrier",
    "broadcast",
    "broadcast_object_list",
    "all_reduce",
    "all_gather",
    "all_gather_object",
    "gather_object",
    "reduce",
    "monitored_barrier",
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trace_collectives():
    """Record every call of :data:`COLLECTIVES` of this process, in order.

    Returns
    -------
    list of str
        Filled as the collectives run.
    """
    import torch.distributed as dist

    calls = []
    for name in COLLECTIVES:
        original = getattr(dist, name, None)
        if original is None:
            continue

        def traced(*args, _name=name, _original=original, **kwargs):
            group = kwargs.get("group")
            calls.append(_name if group is None else f"{_name}[group]")
            return _original(*args, **kwargs)

        setattr(dist, name, functools.wraps(original)(traced))
    return calls


def slow_meta_files(seconds):
    """Make this process slow to rename checkpoint meta files into place.

    ``AtomicCheckpointer`` renames ``CKPT.yaml.partial`` to ``CKPT.yaml``
    once a checkpoint's files are written; delaying that on the main
    process opens the window in which another process lists the
    checkpoints before the new one is visible.

    Arguments
    ---------
    seconds : float
        The delay.
    """
    original = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(src).endswith("CKPT.yaml.partial"):
            time.sleep(seconds)
        return original(src, dst, *args, **kwargs)

    os.replace = replace


def _join(store, timeout_s):
    import torch.distributed as dist

    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    return dist


def checkpoints(store, folder, out):
    """Save and prune checkpoints in one folder from two processes."""
    import torch

    dist = _join(store, 20)
    from speechbrain_relevance.training.checkpoints import AtomicCheckpointer

    calls = trace_collectives()
    if dist.get_rank() == 0:
        slow_meta_files(1.0)
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    ckpter = AtomicCheckpointer(folder, {"model": model})
    for epoch in (1, 2, 3):
        # As RelevanceBrain: keep the last two epochs, then keep one.
        ckpter.save_and_keep_only(meta={"epoch": epoch}, num_to_keep=2)
    ckpter.save_and_keep_only(meta={"epoch": 3, "averaged": 1})
    found = ckpter.find_checkpoint()
    record = {
        "calls": list(calls),
        "n_checkpoints": len(ckpter.list_checkpoints()),
        "latest_epoch": found.meta["epoch"] if found else None,
    }
    with open(f"{out}.{dist.get_rank()}", "w", encoding="utf-8") as f:
        json.dump(record, f)
    dist.barrier()
    dist.destroy_process_group()


def timeout(store, stage):
    """Rank 0 waits at ``stage`` in a barrier that rank 1 never joins."""
    dist = _join(store, 2)
    from speechbrain_relevance.cli import run_main
    from speechbrain_relevance.training.distributed import (
        _STATE,
        mark_stage,
    )

    _STATE["timeout_s"] = 2.0

    def main(argv):
        mark_stage(stage)
        if dist.get_rank() == 0:
            dist.barrier()
        else:
            time.sleep(5)  # past rank 0's 2 s limit, then go
            os._exit(0)

    run_main(main, [], prog="train.py")


def lost(store, stage):
    """Rank 1 exits while rank 0 waits for it at ``stage``."""
    dist = _join(store, 60)
    from speechbrain_relevance.cli import run_main
    from speechbrain_relevance.training.distributed import mark_stage

    def main(argv):
        mark_stage(stage)
        if dist.get_rank() == 1:
            os._exit(3)
        dist.barrier()

    run_main(main, [], prog="train.py")


def uneven(store, stage):
    """The two processes have different numbers of training batches."""
    dist = _join(store, 60)
    from speechbrain_relevance.cli import run_main
    from speechbrain_relevance.training.distributed import (
        check_same_everywhere,
        mark_stage,
    )

    def main(argv):
        mark_stage(stage)
        check_same_everywhere(3 - dist.get_rank(), "number of batches")

    run_main(main, [], prog="train.py")


def _train_module(recipe):
    """Import a recipe's train.py under a unique name."""
    folder = os.path.join(ROOT, "recipes", recipe)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(
            f"ddp_{recipe.lower()}_train", os.path.join(folder, "train.py")
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


def recipes(plan_file):
    """Train every system of a plan in the same two torchrun processes.

    The plan (JSON) holds ``runs``: a list of ``{"name", "recipe",
    "argv"}``, ``ddp_timeout_s``, ``delay_s`` (rank 0's delay in putting
    each checkpoint in place) and ``out`` (where each rank writes its
    record). A run that fails ends the whole plan; its error (for a
    collective, the stage it failed in) is in the record and on stderr.
    """
    import torch.distributed as dist

    from speechbrain_relevance.training.distributed import (
        current_stage,
        distributed_failure,
        init_distributed,
    )

    with open(plan_file, encoding="utf-8") as f:
        plan = json.load(f)
    init_distributed({"distributed_backend": "gloo"}, plan["ddp_timeout_s"])
    rank = dist.get_rank()
    calls = trace_collectives()
    if rank == 0 and plan.get("delay_s"):
        slow_meta_files(plan["delay_s"])
    record = {"runs": {}, "failed": None}
    status = 0
    for run in plan["runs"]:
        start, started = len(calls), time.time()
        print(f"ddp-plan: {run['name']}: start", file=sys.stderr, flush=True)
        try:
            _train_module(run["recipe"]).main(run["argv"])
        except Exception as e:  # noqa: BLE001 (reported, then stop)
            message = distributed_failure(e) or f"{type(e).__name__}: {e}"
            record["failed"] = {
                "run": run["name"], "stage": current_stage(),
                "error": message,
            }
            print(f"ddp-plan: {run['name']}: FAILED at stage "
                  f"'{current_stage()}': {message}", file=sys.stderr,
                  flush=True)
            status = 1
            break
        record["runs"][run["name"]] = {
            "calls": calls[start:], "seconds": time.time() - started,
        }
        print(f"ddp-plan: {run['name']}: done", file=sys.stderr, flush=True)
    with open(f"{plan['out']}.{rank}", "w", encoding="utf-8") as f:
        json.dump(record, f)
    if status:
        os._exit(status)  # the other process may be stuck: no goodbye
    dist.barrier()
    dist.destroy_process_group()


SCENARIOS = {
    "checkpoints": checkpoints,
    "timeout": timeout,
    "lost": lost,
    "uneven": uneven,
    "recipes": recipes,
}

if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    SCENARIOS[sys.argv[1]](*sys.argv[2:])
