"""Tests of the filter-movement diagnostic."""

import math

import pytest
import torch

from speechbrain_relevance.analysis.movement import (
    filter_movement,
    filter_summary,
    movement_markdown,
)
from speechbrain_relevance.lobes import CosGaussFilterbank


def small_bank():
    return CosGaussFilterbank(
        n_filters=8, sample_rate=8000, win_length=200, hop_length=80,
        kernel_size=129,
    )


def test_movement_is_zero_for_an_untouched_bank():
    bank = small_bank()
    m = filter_movement(bank, bank)
    assert m["mean_abs_center_shift_hz"] == 0.0
    assert m["mean_abs_log2_bandwidth_ratio"] == 0.0


def test_movement_measures_a_known_shift():
    before = small_bank()
    after = small_bank()
    with torch.no_grad():
        after.theta += 0.1
    m = filter_movement(before, after)
    expected = (
        after.center_frequencies() - before.center_frequencies()
    ).abs().mean()
    assert m["mean_abs_center_shift_hz"] == pytest.approx(float(expected))
    assert all(s > 0 for s in m["center_shift_hz"])
    # Constant-Q: the bandwidth follows the centre frequency.
    assert m["mean_abs_log2_bandwidth_ratio"] > 0
    text = movement_markdown(m, every=2)
    assert text.count("\n| ") == 1 + 4  # header + every second of 8


def test_movement_rejects_different_sizes():
    a = filter_summary(small_bank())
    b = {"center_hz": a["center_hz"][:4], "bandwidth_hz": None}
    with pytest.raises(ValueError, match="8 and 4 filters"):
        filter_movement(a, b)
    m = filter_movement(
        {"center_hz": [100.0], "bandwidth_hz": None},
        {"center_hz": [100.0], "bandwidth_hz": None},
    )
    assert m["bandwidth_ratio"] is None
    assert not math.isnan(m["mean_abs_center_shift_hz"])
