"""The GPU check script's CPU path: a small run writes complete JSON.

The small size on CPU runs every part of ``benchmarks/gpu_check.py``: all
front-end x protocol x precision cells (compile cells recorded as skipped
in the small size), the three recipes' training steps, and the FSDD and
DDP parts recorded as skipped with their reasons.
"""

import importlib.util
import json
import math
import os
import statistics

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.py")


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_run(gpu_check, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    returned = gpu_check.main([
        "--size", "small", "--device", "cpu", "--threads", "1",
        "--json", str(out),
    ])
    return returned, json.loads(out.read_text())


def test_json_names_device_and_versions(small_run):
    returned, data = small_run
    # The file is what main returned (JSON round trip).
    assert data == json.loads(json.dumps(returned))
    assert data["device_name"].startswith("cpu")
    assert data["torch"] and data["torchaudio"]
    assert data["size"] == "small"
    assert data["machine"]["torch_threads"] == 1


def test_every_frontend_cell_is_timed_or_explains_itself(
        gpu_check, small_run):
    _, data = small_run
    cells = data["frontends"]["cells"]
    assert set(cells) == set(gpu_check.PROTOCOLS)
    for protocol, by_system in cells.items():
        assert set(by_system) == set(gpu_check.SYSTEMS), protocol
        mel_ms = by_system["mel"]["fp32"]["fwd_ms"]
        assert mel_ms > 0
        for system, by_precision in by_system.items():
            assert set(by_precision) == {"fp32", "bf16", "compile"}
            for precision, cell in by_precision.items():
                where = (protocol, system, precision)
                assert cell["mel_fwd_ms"] == mel_ms, where
                if precision == "compile":
                    # Compile is attempted in the full size only.
                    assert cell["skipped"] == "skipped in small size", where
                    assert cell["fwd_ms"] is None, where
                    continue
                assert cell["skipped"] is None, where
                # Timed, or the failure is written down: never missing.
                assert cell["fwd_ms"] is not None or cell["error"], where
                if system == "mel":
                    assert cell["note"], where  # forward only
                    assert cell["fwd_bwd_ms"] is None, where
                else:
                    assert cell["fwd_bwd_ms"] is not None or cell["error"]
                for key in ("fwd", "fwd_bwd"):
                    ms = cell[f"{key}_ms"]
                    got = cell[f"{key}_ratio_to_mel"]
                    if ms is None:
                        assert got is None, where
                        continue
                    assert ms > 0, where
                    assert math.isclose(got, ms / mel_ms), where
                    runs = cell[f"{key}_runs_ms"]
                    assert ms == statistics.median(runs), where
                    # No CUDA: no allocator peak to report.
                    assert cell[f"{key}_peak_mib"] is None, where
    # The protocols' settings are recorded (small: shrunk batches).
    protocols = data["frontends"]["protocols"]
    assert protocols["paper"]["kernel_size"] == 705
    assert protocols["efficientleaf"]["n_bands"] == 40
    assert protocols["paper"]["batch"] == 1


def test_bf16_cells_are_timed_on_cpu(small_run):
    _, data = small_run
    # CPU autocast supports bf16: the cells time rather than fail.
    for by_system in data["frontends"]["cells"].values():
        for system, by_precision in by_system.items():
            cell = by_precision["bf16"]
            assert cell["fwd_ms"] > 0 and cell["error"] is None, system


def test_training_step_ratios_for_the_three_recipes(small_run):
    _, data = small_run
    steps = data["train_step"]
    assert set(steps) == {"DCASE2020", "UrbanSound8k", "FSDD"}
    for recipe, by_precision in steps.items():
        entry = by_precision["fp32"]
        assert entry["error"] is None, (recipe, entry["error"])
        assert entry["baseline_system"] == "mel_baseline"
        assert entry["proposed_system"] == "relevance_2head"
        base = entry["baseline"]["s_per_step"]
        prop = entry["proposed"]["s_per_step"]
        assert base > 0 and prop > 0
        assert math.isclose(entry["ratio"], prop / base)


def test_fsdd_and_ddp_parts_record_why_they_were_skipped(small_run):
    _, data = small_run
    assert data["fsdd"]["skipped"].startswith("needs a CUDA device")
    assert data["ddp"]["skipped"].startswith("needs two or more CUDA GPUs")
    # Every part's wall time is recorded.
    assert set(data["part_wall_s"]) == {
        "frontends", "train_step", "fsdd", "ddp"}


def test_tables_are_in_the_json(small_run):
    _, data = small_run
    table = data["frontend_table_markdown"].splitlines()
    # Header, rule, and one row per system x protocol x precision.
    assert len(table) == 2 + 7 * 2 * 3
    assert "fwd+bwd x mel" in table[0]
    assert len(data["train_step_table_markdown"].splitlines()) == 2 + 3


def test_ratio_helper_on_hand_made_cells(gpu_check):
    assert gpu_check.ratio(6.0, 2.0) == 3.0
    assert gpu_check.ratio(None, 2.0) is None
    assert gpu_check.ratio(1.0, None) is None
    assert gpu_check.ratio(1.0, 0.0) is None
    cells = {
        "mel": {
            "fp32": {"fwd_ms": 4.0, "fwd_bwd_ms": None},
            "bf16": {"fwd_ms": 2.0, "fwd_bwd_ms": None},
        },
        "cosgauss_spectral": {
            "fp32": {"fwd_ms": 5.0, "fwd_bwd_ms": 10.0},
            "compile": {"fwd_ms": None, "fwd_bwd_ms": None},
        },
    }
    assert gpu_check.add_mel_ratios(cells) == 4.0
    # One anchor: the fp32 mel forward, for every precision.
    assert cells["mel"]["bf16"]["fwd_ratio_to_mel"] == 0.5
    spectral = cells["cosgauss_spectral"]
    assert spectral["fp32"]["fwd_ratio_to_mel"] == 1.25
    assert spectral["fp32"]["fwd_bwd_ratio_to_mel"] == 2.5
    assert spectral["compile"]["fwd_ratio_to_mel"] is None
    # Without a mel fp32 forward there is no reference at all.
    orphan = {"x": {"fp32": {"fwd_ms": 1.0, "fwd_bwd_ms": 2.0}}}
    assert gpu_check.add_mel_ratios(orphan) is None
    assert orphan["x"]["fp32"]["fwd_ratio_to_mel"] is None


def test_failing_cell_records_its_error(gpu_check, monkeypatch):
    import torch

    def broken(system, protocol):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(gpu_check, "build_frontend", broken)
    timer = gpu_check.Timer("cpu", warmup=1, repeats=1, min_repeats=1,
                            budget_s=0.1)
    cell = gpu_check.measure_cell(
        "sb_leaf", "paper", "fp32", torch.zeros(1, 100), timer, "on")
    assert cell["fwd_ms"] is None and cell["fwd_bwd_ms"] is None
    assert cell["error"] == (
        "build: RuntimeError: CUDA out of memory (simulated)")


def test_forward_failure_keeps_the_other_measurement(gpu_check,
                                                    monkeypatch):
    import torch

    class FailsWithoutGrad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            if not torch.is_grad_enabled():
                raise RuntimeError("no forward-only path")
            return x * self.w

    monkeypatch.setattr(gpu_check, "build_frontend",
                        lambda system, protocol: FailsWithoutGrad())
    timer = gpu_check.Timer("cpu", warmup=1, repeats=2, min_repeats=1,
                            budget_s=0.1)
    cell = gpu_check.measure_cell(
        "cosgauss_spectral", "paper", "bf16", torch.ones(2, 10), timer,
        "skipped in small size")
    assert cell["fwd_ms"] is None
    assert cell["error"] == "fwd: RuntimeError: no forward-only path"
    assert cell["fwd_bwd_ms"] > 0


def test_skip_reasons(gpu_check, tmp_path):
    assert gpu_check.fsdd_skip_reason("cuda:0", "full", False, str(tmp_path)) \
        == "disabled by --no_fsdd_run"
    assert gpu_check.fsdd_skip_reason(
        "cuda:0", "full", True, str(tmp_path / "missing")
    ).startswith("FSDD data not found")
    assert gpu_check.fsdd_skip_reason("cuda:0", "full", True,
                                      str(tmp_path)) is None
