"""The training-step benchmark runs the real recipe code and writes JSON.

One recipe (FSDD, on the vendored subset), two systems, one timed step:
the JSON holds, per system and precision, the step time, its ratio to the
mel baseline, a peak memory figure and the loader-vs-training clips/s.
"""

import importlib.util
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "train_step.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_step_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_writes_complete_json(bench, tmp_path):
    out = tmp_path / "train_step.json"
    returned = bench.main([
        "--recipes", "FSDD", "--systems", "cosgauss", "--steps", "2",
        "--warmup", "1", "--batch_size", "4", "--precision", "fp32",
        "bf16", "--loader_batches", "1", "--out", str(out),
    ])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(returned))
    assert data["machine"]["torch"]
    assert data["machine"]["torch_threads"] == 1
    assert "--recipes FSDD" in data["command"]
    assert list(data["recipes"]) == ["FSDD"]
    recipe = data["recipes"]["FSDD"]
    # The mel baseline is always added: it is the reference of the ratios.
    assert list(recipe["systems"]) == ["mel_baseline", "cosgauss"]
    loader = recipe["loader"]
    assert loader["num_workers"] == 0  # the FSDD recipe's default
    # The loader is timed with the recipe's own (non-dynamic) batch size.
    yaml = os.path.join(ROOT, "recipes", "FSDD", "hparams", "cosgauss.yaml")
    with open(yaml) as f:
        recipe_batch = int(re.search(r"^batch_size: (\d+)", f.read(),
                                     re.M).group(1))
    assert loader["batch_size"] == recipe_batch and loader["clips_per_s"] > 0
    for precision in ("fp32", "bf16"):
        mel = recipe["systems"]["mel_baseline"][precision]
        cos = recipe["systems"]["cosgauss"][precision]
        for row in (mel, cos):
            assert len(row["step_times_s"]) == 2
            assert row["s_per_step"] > 0
            assert row["batch_size"] == 4
            assert row["clip_seconds"] == 1.5 and row["sample_rate"] == 8000
            assert row["peak_mem_mib"] is None or row["peak_mem_mib"] >= 0
            assert row["gflop_per_step"] > 0
            assert row["consumed_clips_per_s"] == pytest.approx(
                4 / row["s_per_step"]
            )
            assert row["loader_clips_per_s"] == loader["clips_per_s"]
            assert row["loader_is_bottleneck"] == (
                loader["clips_per_s"] < row["consumed_clips_per_s"]
            )
        assert mel["ratio_to_mel"] == 1.0
        assert mel["flop_ratio_to_mel"] == 1.0
        # Same classifier, a learnable front-end: a little more arithmetic
        # (its backward), not much.
        assert 1.0 < cos["flop_ratio_to_mel"] < 1.5
        assert cos["ratio_to_mel"] == pytest.approx(
            cos["s_per_step"] / mel["s_per_step"]
        )
        # Different hparams files were loaded: the Cos-Gauss front-end has
        # learnable centre frequencies, the mel one none.
        assert cos["n_params"] > mel["n_params"]
    assert "| FSDD | cosgauss | bf16 | 4 |" in data["table_markdown"]


def test_lstm_flops_are_counted(bench):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if not torch.backends.mkldnn.is_available():
        pytest.skip("the CPU LSTM formulas are for the oneDNN kernels")
    lstm = torch.nn.LSTM(12, 8, num_layers=2, batch_first=True)
    x = torch.randn(3, 20, 12, requires_grad=True)
    with FlopCounterMode(display=False, custom_mapping=bench.rnn_flops()) as fc:
        out, _ = lstm(x)
        out.sum().backward()
    # Gate products 2 * T * B * 4H * (input + H) per layer, x3 with backward.
    per_layer = [2 * 20 * 3 * 32 * (12 + 8), 2 * 20 * 3 * 32 * (8 + 8)]
    assert fc.get_total_flops() == 3 * sum(per_layer)


def test_fp16_needs_cuda(bench, tmp_path):
    with pytest.raises(bench.UserError, match="fp16"):
        bench.main(["--recipes", "FSDD", "--precision", "fp16",
                    "--out", str(tmp_path / "x.json")])
