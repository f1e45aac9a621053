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


def test_movement_in_perceptual_units_and_responses():
    """The critique's measures on a hand-made move of one filter."""
    before = small_bank()
    after = small_bank()
    with torch.no_grad():
        after.theta[3] += 0.2  # one filter up, the rest untouched
    m = filter_movement(before, after)
    moved = [k for k, s in enumerate(m["center_shift_hz"]) if s != 0.0]
    assert len(moved) == 1
    k = moved[0]
    # Shift on the mel and ERB-rate scales, from the centres themselves.
    lo, hi = m["center_hz_initial"][k], m["center_hz"][k]
    mel = 2595 * (math.log10(1 + hi / 700) - math.log10(1 + lo / 700))
    erb = 21.4 * (
        math.log10(1 + 0.00437 * hi) - math.log10(1 + 0.00437 * lo)
    )
    assert m["mean_abs_center_shift_mel"] == pytest.approx(mel / 8)
    assert m["mean_abs_center_shift_erb"] == pytest.approx(erb / 8)
    # In bands: the mel shift over the initial bank's mel band (its mel
    # range over its gaps: a mel-initialised bank's neighbour spacing).
    centers = [2595 * math.log10(1 + c / 700) for c in m["center_hz_initial"]]
    width = (centers[-1] - centers[0]) / 7
    assert width == pytest.approx((centers[k + 1] - centers[k - 1]) / 2)
    assert m["center_shift_bands"][k] == pytest.approx(mel / width)
    assert m["max_abs_center_shift_bands"] == pytest.approx(mel / width)
    # Only the moved filter's response changed, and it did.
    d = m["response_distance"]
    assert d[k] > 0.01
    assert all(d[j] == 0.0 for j in range(8) if j != k)
    # A larger move is a larger distance.
    with torch.no_grad():
        after.theta[3] += 0.4
    assert filter_movement(before, after)["response_distance"][k] > d[k]


def test_bands_stay_a_band_wide_for_a_random_initialisation():
    """Near-coincident initial neighbours must not inflate the band unit.

    A random initial bank can put two filters 0.1 Hz apart; measured by
    the gap to its neighbours, a 10 Hz move of one of them would read as
    hundreds of bands. Against the bank's mean band it is a small
    fraction of one.
    """
    before = {"center_hz": [100.0, 1000.0, 1000.1, 3000.0],
              "bandwidth_hz": None}
    after = {"center_hz": [100.0, 1000.0, 1010.1, 3000.0],
             "bandwidth_hz": None}
    m = filter_movement(before, after)
    mel = 2595 * math.log10(1 + 3000 / 700) - 2595 * math.log10(1 + 1 / 7)
    shift = 2595 * (math.log10(1 + 1010.1 / 700)
                    - math.log10(1 + 1000.1 / 700))
    assert m["center_shift_bands"][2] == pytest.approx(shift / (mel / 3))
    assert 0.0 < m["max_abs_center_shift_bands"] < 0.1


def test_untouched_bank_has_zero_distance_in_every_unit():
    bank = small_bank()
    m = filter_movement(bank, small_bank())
    assert m["mean_abs_center_shift_bands"] == 0.0
    assert m["mean_abs_center_shift_erb"] == 0.0
    assert m["mean_response_distance"] == 0.0


def test_learned_vs_initial_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from speechbrain_relevance.analysis.figures import plot_learned_vs_initial

    before = small_bank()
    moved = small_bank()
    with torch.no_grad():
        moved.theta += 0.1
    path = tmp_path / "movement.png"
    fig = plot_learned_vs_initial(
        {"learned": [filter_movement(before, moved)],
         "frozen": [filter_movement(before, before)]},
        str(path),
    )
    assert path.stat().st_size > 0
    titles = [ax.get_title() for ax in fig.axes[:2]]
    assert titles[0].startswith("learned") and "0 Hz" not in titles[0]
    assert titles[1] == "frozen\n|shift| 0 Hz, 0.00 bands"
    with pytest.raises(ValueError, match="runs per system"):
        plot_learned_vs_initial({"empty": []})
