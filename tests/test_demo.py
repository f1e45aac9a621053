"""The demo (``make demo``) gives the same numbers for the same command."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "recipes", "DCASE2020", "demo.py")


def run_demo(tmp_path, name, *seeds):
    out = tmp_path / name
    subprocess.run(
        [sys.executable, DEMO, "--systems", "mel_baseline", "--epochs", "1",
         "--duration", "1.0", "--n_cities", "2", "--fcn_width", "0.0625",
         "--threads", "1", "--data_root", str(tmp_path / "data"),
         "--output", str(out), "--train_seeds", *seeds],
        check=True, capture_output=True, timeout=600,
    )
    with open(out / "demo_summary.json") as f:
        return json.load(f)["rows"][0]


def test_demo_is_reproducible_and_reports_the_spread_over_seeds(tmp_path):
    both = run_demo(tmp_path, "both", "7", "8")
    again = run_demo(tmp_path, "again", "8")
    assert both["train_seeds"] == [7, 8]
    assert len(both["accuracies"]) == 2
    # The same seed and thread count give the same result.
    assert again["accuracies"] == [both["accuracies"][1]]
    spread = (tmp_path / "both" / "demo_summary.md").read_text()
    assert "+-" in spread and "training seeds [7, 8]" in spread
