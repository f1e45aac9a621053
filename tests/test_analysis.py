"""Figures, tables and model loading of ``speechbrain_relevance.analysis``.

One tiny real recipe run of each kind (2-head relevance, log-mel
baseline; 1 epoch on a 1 s synthetic DCASE2020 set) is shared by all
tests; the analysis CLI runs once on each.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from speechbrain_relevance.analysis import load_trained
from speechbrain_relevance.analysis.__main__ import analyse
from speechbrain_relevance.analysis.__main__ import main as analysis_main
from speechbrain_relevance.analysis.figures import representation_panels
from speechbrain_relevance.data.audio import load_audio, peak_normalize
from speechbrain_relevance.lobes.functional import mel_center_frequencies

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "DCASE2020"),
]
import synthetic_dcase2020 as synthetic_dcase  # noqa: E402
from prepare_dcase2020 import DCASE_ABBREVIATIONS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "recipes", "DCASE2020")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ENV = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")


def _train(name, data, out):
    """Start one tiny recipe run; returns the process."""
    return subprocess.Popen(
        [
            sys.executable,
            os.path.join(RECIPE, "train.py"),
            os.path.join(RECIPE, "hparams", f"{name}.yaml"),
            f"--data_folder={data}",
            f"--output_folder={out}",
            "--number_of_epochs=1",
            "--fcn_width=0.0625",
            "--batch_size=4",
            "--num_workers=0",
            "--crop_frames=24",
            "--device=cpu",
        ],
        cwd=RECIPE,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    data = str(
        synthetic_dcase.generate_synthetic_dcase(
            root=str(root / "data"),
            n_cities=2,
            n_locations_per_city=2,
            n_segments_per_location=1,
            duration=1.0,
            seed=0,
        )
    )
    clip = sorted(glob.glob(os.path.join(data, "audio", "airport-*-a.wav")))[0]
    rel, mel = str(root / "rel"), str(root / "mel")
    # The two runs are independent: train them side by side.
    procs = [
        _train("relevance_2head", data, rel),
        _train("mel_baseline", data, mel),
    ]
    for proc in procs:
        log = proc.communicate()[0].decode(errors="replace")
        assert proc.returncode == 0, log[-3000:]

    # The command line on the relevance run, the mel run compared.
    rel_out = str(root / "rel_analysis")
    analysis_main([rel, "--out", rel_out, "--audio", clip, "--compare", mel])
    return {
        "root": root,
        "clip": clip,
        "rel": rel,
        "mel": mel,
        "rel_out": rel_out,
    }


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _assert_png(path):
    with open(path, "rb") as f:
        head = f.read(8)
    assert head == PNG_MAGIC, path
    assert os.path.getsize(path) > 10_000, path


def test_cli_writes_figures_and_tables(runs):
    out = runs["rel_out"]
    stem = os.path.splitext(os.path.basename(runs["clip"]))[0]
    for name in (
        "center_frequencies.png",
        "filter_responses.png",
        f"representation_{stem}.png",
    ):
        _assert_png(os.path.join(out, name))
    for name in ("tables.md", "tables.json", "parameters.json"):
        assert os.path.getsize(os.path.join(out, name)) > 100


def test_parameter_counts_add_up(runs):
    params = _read_json(os.path.join(runs["rel_out"], "parameters.json"))
    assert params["filterbank"]["parameters"] == 80
    assert params["relevance"]["per_head"] == [1151, 1151]
    assert params["relevance"]["parameters"] == 2 * 1151
    model = load_trained(runs["rel"])
    n_classifier = sum(p.numel() for p in model.classifier.parameters())
    assert params["classifier"]["parameters"] == n_classifier
    assert params["front_end"] == 80 + 2302
    assert params["total"] == 80 + 2302 + n_classifier
    assert params["front_end_percent"] == pytest.approx(
        100 * 2382 / n_classifier
    )
    (mel,) = params["others"]
    assert mel["filterbank"]["module"] == "Fbank"
    assert mel["filterbank"]["parameters"] == 0
    assert mel["relevance"] is None
    assert mel["total"] == mel["classifier"]["parameters"] == n_classifier


def test_center_frequency_data(runs):
    curves = _read_json(
        os.path.join(runs["rel_out"], "center_frequencies.json")
    )
    assert list(curves) == ["mel filterbank", "learnt Cos-Gauss"]
    learnt = np.asarray(curves["learnt Cos-Gauss"])
    assert np.all(np.diff(learnt) >= 0)
    model = load_trained(runs["rel"])
    expected = model.compute_features.center_frequencies().double().numpy()
    np.testing.assert_allclose(learnt, expected, rtol=1e-6)
    np.testing.assert_allclose(
        curves["mel filterbank"],
        mel_center_frequencies(80, 0.0, 22050.0).double().numpy(),
        rtol=1e-6,
    )


def test_tables_contain_every_class_and_device(runs):
    text = open(os.path.join(runs["rel_out"], "tables.md")).read()
    header = next(
        line
        for line in text.splitlines()
        if line.startswith("| Representation")
    )
    for abbr in DCASE_ABBREVIATIONS.values():
        assert f" {abbr} " in header
    assert "| Cos-Gauss + 2head-rel. |" in text
    assert "| Mel |" in text
    results = _read_json(os.path.join(runs["rel"], "test_results.json"))
    device_header = next(
        line for line in text.splitlines() if line.startswith("| Device")
    )
    for device in results["group_accuracy"]:
        assert f" {device} " in device_header
    assert results["group_by"] == "device"
    assert "## Accuracy per device (%)" in text
    rows = _read_json(os.path.join(runs["rel_out"], "tables.json"))
    assert [r["name"] for r in rows] == ["Cos-Gauss + 2head-rel.", "Mel"]
    assert rows[0]["results"] == results


def test_mel_baseline_skips_what_does_not_apply(runs, capsys):
    out = str(runs["root"] / "mel_analysis")
    written = analyse([runs["mel"], "--out", out, "--audio", runs["clip"]])
    said = capsys.readouterr().out
    assert "Skipping center_frequencies.png" in said
    assert "Skipping filter_responses.png" in said
    assert "no relevance heads" in said
    names = sorted(os.path.basename(p) for p in written)
    assert "center_frequencies.png" not in names
    stem = os.path.splitext(os.path.basename(runs["clip"]))[0]
    _assert_png(os.path.join(out, f"representation_{stem}.png"))
    params = _read_json(os.path.join(out, "parameters.json"))
    assert params["relevance"] is None and "others" not in params


def test_representation_panels_of_trained_model(runs):
    model = load_trained(runs["rel"])
    wav = peak_normalize(load_audio(runs["clip"], sample_rate=44100))
    out = representation_panels(model.pipeline, wav, model.sample_rate)
    titles = [p["title"] for p in out["panels"]]
    assert [t[:3] for t in titles] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    assert "bands 0-39" in titles[2] and "bands 40-79" in titles[3]
    assert out["panels"][3]["first_band"] == 40
    n_frames = 1 + wav.numel() // 1024
    for panel in out["panels"]:
        assert panel["data"].shape[0] == n_frames
    masks = out["masks"]
    assert masks.shape == (n_frames, 80)
    assert masks.min() > 0 and masks.max() < 1
    final = out["panels"][-1]["data"]
    assert final.min() >= 0 and final.max() <= 1 + 1e-6
    with torch.no_grad():
        feats = model.compute_features(wav[None])
        expected = model.relevance(feats, torch.ones(1))[0].numpy()
    np.testing.assert_allclose(final, expected, atol=1e-6)


# An exported model folder: inference yaml (no training entries, a
# placeholder for the folder) with the <module>.ckpt files next to it.
MODEL_YAML = """\
sample_rate: 44100
labels: [airport, bus, metro, metro_station, park, public_square,
         shopping_mall, street_pedestrian, street_traffic, tram]
model_folder: !PLACEHOLDER
compute_features: !new:speechbrain_relevance.lobes.CosGaussFilterbank
    n_filters: 80
    sample_rate: !ref <sample_rate>
relevance: !new:speechbrain_relevance.lobes.MultiHeadRelevance
    n_bands: 80
    n_heads: 2
classifier: !new:speechbrain_relevance.models.FCN
    n_classes: 10
    in_channels: 3
    width: 0.0625
modules:
    compute_features: !ref <compute_features>
    relevance: !ref <relevance>
    classifier: !ref <classifier>
"""


def test_load_trained_model_folder(runs, tmp_path):
    run = load_trained(runs["rel"])
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(MODEL_YAML)
    for name in ("compute_features", "relevance", "classifier"):
        shutil.copy(os.path.join(run.checkpoint_dir, f"{name}.ckpt"), folder)
    state = torch.random.get_rng_state()
    model = load_trained(str(folder))
    assert torch.equal(state, torch.random.get_rng_state())
    assert model.checkpoint_dir == str(folder)
    assert model.hparams["model_folder"] == str(folder)
    frontend, relevance, classifier, labels, sample_rate = model
    assert labels == run.labels and sample_rate == 44100
    for mine, theirs in (
        (frontend, run.compute_features),
        (relevance, run.relevance),
        (classifier, run.classifier),
    ):
        assert not mine.training
        for key, value in theirs.state_dict().items():
            assert torch.equal(mine.state_dict()[key], value), key

    # The CLI takes it too; no results there, so no accuracy tables.
    out = str(tmp_path / "out")
    analysis_main([str(folder), "--out", out])
    _assert_png(os.path.join(out, "center_frequencies.png"))
    assert "Class-wise" not in open(os.path.join(out, "tables.md")).read()


def test_load_trained_without_checkpoint_fails(tmp_path):
    (tmp_path / "hyperparams.yaml").write_text(MODEL_YAML)
    with pytest.raises(FileNotFoundError, match="No model checkpoint"):
        load_trained(str(tmp_path))


def test_load_trained_exported_folder(runs, tmp_path):
    # The real exporter, where it exists (developed alongside).
    export = pytest.importorskip("speechbrain_relevance.export")
    folder = str(tmp_path / "exported")
    assert export.main([runs["rel"], folder, "--no-verify"]) == 0
    run = load_trained(runs["rel"])
    model = load_trained(folder)
    assert model.labels == run.labels
    assert model.sample_rate == run.sample_rate
    for name in ("compute_features", "relevance", "classifier"):
        mine = getattr(model, name).state_dict()
        for key, value in getattr(run, name).state_dict().items():
            assert torch.equal(mine[key], value), (name, key)


def test_parameter_total_counts_every_module(runs):
    model = load_trained(runs["rel"])
    params = _read_json(os.path.join(runs["rel_out"], "parameters.json"))
    total = sum(
        p.numel() for m in model.all_modules().values()
        for p in m.parameters()
    )
    assert params["total"] == total
    assert params["other_modules"] == {}


def test_cli_bad_input_is_one_line(tmp_path):
    missing = str(tmp_path / "no_such_run")
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    (not_a_model / "hyperparams.yaml").write_text("sample_rate: 16000\n")
    for folder, words in ((missing, missing),
                          (str(not_a_model), "No model checkpoint")):
        proc = subprocess.run(
            [sys.executable, "-m", "speechbrain_relevance.analysis", folder,
             "--out", str(tmp_path / "out")],
            env=ENV, capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], proc.stderr
