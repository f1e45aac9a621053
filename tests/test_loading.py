"""Default loader workers: 4, capped by the CPUs the process may use."""

import os

import pytest
from hyperpyyaml import load_hyperpyyaml

from speechbrain_relevance.data import loading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("cpus,expected", [(1, 1), (2, 2), (4, 4), (16, 4)])
def test_cap_at_usable_cpus(monkeypatch, cpus, expected):
    monkeypatch.setattr(loading, "usable_cpus", lambda: cpus)
    assert loading.available_workers(4) == expected
    assert loading.available_workers(0) == 0


@pytest.mark.parametrize("bad", [-1, True, 2.0, "4"])
def test_bad_limit_is_refused(bad):
    with pytest.raises(ValueError, match="num_workers limit"):
        loading.available_workers(bad)


@pytest.mark.parametrize(
    "recipe,overrides",
    [
        ("UrbanSound8k", {"data_folder": "d", "test_fold": 1}),
        ("DCASE2020", {"data_folder": "d", "fcn_width": 0.0625}),
    ],
)
def test_recipes_default_and_override(monkeypatch, tmp_path, recipe, overrides):
    monkeypatch.setattr(loading, "usable_cpus", lambda: 2)
    path = os.path.join(ROOT, "recipes", recipe, "hparams", "cosgauss.yaml")
    overrides = {**overrides, "output_folder": str(tmp_path)}
    with open(path, encoding="utf-8") as fin:
        hp = load_hyperpyyaml(fin, overrides)
    assert hp["num_workers"] == 2
    assert hp["train_dataloader_opts"]["num_workers"] == 2
    with open(path, encoding="utf-8") as fin:
        hp = load_hyperpyyaml(fin, {**overrides, "num_workers": 3})
    assert hp["train_dataloader_opts"]["num_workers"] == 3
