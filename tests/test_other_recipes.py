"""The ECAPA example: a yaml swap trains, exports and loads offline.

Trains ``recipes/other_recipes/ecapa_cosgauss.yaml``, its relevance
variant (made by the same one-block yaml edit a user would make) and the
stock-Fbank baseline ``ecapa_fbank.yaml`` for one epoch of a tiny ECAPA on
synthetic clips, exports each run with the package's exporter
(``speechbrain_relevance.export``, the one for every recipe) and loads it
with ``EncoderClassifier.from_hparams`` from another directory.
"""

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from hyperpyyaml import load_hyperpyyaml
from ruamel.yaml import YAML
from speechbrain.inference.classifiers import EncoderClassifier

from speechbrain_relevance.analysis.__main__ import main as analysis_main
from speechbrain_relevance.errors import ExportError
from speechbrain_relevance.export import export_model, main, verify_export

RECIPE_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "recipes",
    "other_recipes",
)
COSGAUSS_YAML = os.path.join(RECIPE_DIR, "ecapa_cosgauss.yaml")
FBANK_YAML = os.path.join(RECIPE_DIR, "ecapa_fbank.yaml")
FBANK_RELEVANCE_YAML = os.path.join(RECIPE_DIR, "ecapa_fbank_relevance.yaml")
#: The variants with relevance weighting in compute_features.
RELEVANCE = ("relevance", "fbank_relevance")
CLASSES = {"low": 300.0, "mid": 1500.0, "high": 5000.0}
SR = 16000

# A tiny ECAPA (channels divisible by res2net's scale of 8), 40 bands.
TINY = [
    "--number_of_epochs=1",
    "--batch_size=4",
    "--n_mels=40",
    "--channels=[16, 16, 16, 16, 48]",
    "--attention_channels=8",
    "--se_channels=8",
    "--emb_dim=16",
    "--out_n_neurons=3",
    "--device=cpu",
]


def _load_script(name):
    spec = importlib.util.spec_from_file_location(
        f"other_recipes_{name}", os.path.join(RECIPE_DIR, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_ecapa = _load_script("train_ecapa")


def _tone(rng, freq, n_samples, sr):
    t = np.arange(n_samples) / sr
    f = freq * (1 + 0.05 * rng.standard_normal())
    x = 0.5 * np.sin(2 * np.pi * f * t)
    return (x + 0.05 * rng.standard_normal(n_samples)).astype("float32")


def _write_manifests(folder):
    """12 clips, 3 tone classes: 2 train, 1 valid, 1 test clip per class.

    One training clip is 22.05 kHz stereo, which the data pipeline must
    resample and downmix. Paths use {data_root}, as SpeechBrain manifests
    may.
    """
    rng = np.random.default_rng(0)
    manifests = {"train": {}, "valid": {}, "test": {}}
    for label, freq in CLASSES.items():
        for i, split in enumerate(["train", "train", "valid", "test"]):
            name = f"{label}_{i}"
            if label == "mid" and i == 1:
                sr = 22050
                x = _tone(rng, freq, int(0.45 * sr), sr)
                x = np.stack([x, 0.5 * x], axis=1)
            else:
                sr = SR
                # Test clips share one length so that a batch of them has
                # no padding (EncoderClassifier passes no lengths to
                # compute_features).
                dur = 0.5 if split == "test" else 0.4 + 0.05 * i
                x = _tone(rng, freq, int(dur * sr), sr)
            sf.write(os.path.join(folder, f"{name}.wav"), x, sr)
            manifests[split][name] = {
                "wav": "{data_root}/" + f"{name}.wav",
                "class": label,
            }
    for split, entries in manifests.items():
        with open(os.path.join(folder, f"{split}.json"), "w") as f:
            json.dump(entries, f, indent=2)
    return manifests


def relevance_variant(text):
    """Swap in the commented RelevanceFrontEnd block: the user's yaml edit.

    The active ``compute_features`` block is removed and the commented one
    below it uncommented; nothing else changes.
    """
    lines = text.splitlines()
    start = lines.index(
        next(ln for ln in lines if ln.startswith("compute_features: !new:"))
    )
    end = lines.index("", start)
    del lines[start:end]
    commented = next(
        i
        for i, ln in enumerate(lines)
        if ln.startswith("# compute_features: !new:")
    )
    i = commented
    while i < len(lines) and lines[i].startswith("# "):
        lines[i] = lines[i][2:]
        i += 1
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def one_thread():
    # Other processes share the CPU cores; a single thread avoids the
    # thread contention that makes small convolutions crawl.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    _write_manifests(str(folder))
    return folder


@pytest.fixture(
    scope="module",
    params=["fbank", "cosgauss", "relevance", "fbank_relevance"],
)
def trained(request, data_folder, tmp_path_factory):
    """Train one epoch and export; yields the run and model folders."""
    root = tmp_path_factory.mktemp(request.param)
    yaml_path = {
        "fbank": FBANK_YAML, "fbank_relevance": FBANK_RELEVANCE_YAML,
    }.get(request.param, COSGAUSS_YAML)
    if request.param == "relevance":
        with open(COSGAUSS_YAML, encoding="utf-8") as f:
            text = relevance_variant(f.read())
        yaml_path = str(root / "ecapa_relevance.yaml")
        with open(yaml_path, "w", encoding="utf-8") as f:
            f.write(text)
    run = root / "run"
    model = root / "model"
    # One thread, as in one_thread (a function-scoped fixture cannot
    # wrap this module-scoped one).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_ecapa.main(
            [yaml_path, f"--data_folder={data_folder}",
             f"--output_folder={run}", *TINY]
        )
        info = export_model(str(run), str(model))
    finally:
        torch.set_num_threads(threads)
    return {"variant": request.param, "run": run, "model": model,
            "checkpoint": info.checkpoint, "root": root}


def _trained_state(checkpoint, name):
    return torch.load(
        os.path.join(checkpoint, f"{name}.ckpt"), weights_only=True
    )


def _without_front_end(tree):
    """A yaml tree's lines without compute_features, comments or blanks.

    Compared through a dump: ruamel nodes keep tags, anchors and
    references, so equal dumps mean equal yaml.
    """
    del tree["compute_features"]
    stream = io.StringIO()
    YAML().dump(tree, stream)
    return [
        ln for ln in stream.getvalue().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]


def test_fbank_and_cosgauss_yaml_differ_only_in_compute_features():
    yaml = YAML()
    with open(FBANK_YAML, encoding="utf-8") as f:
        fbank = yaml.load(f)
    with open(COSGAUSS_YAML, encoding="utf-8") as f:
        cosgauss = yaml.load(f)
    assert fbank["compute_features"].tag.value.endswith("features.Fbank")
    assert cosgauss["compute_features"].tag.value.endswith(
        "CosGaussFilterbank"
    )
    # Fbank's own options (context frames, deltas) are left out of the
    # Cos-Gauss yaml, which has no use for them.
    for key in ("left_frames", "right_frames", "deltas"):
        assert key not in cosgauss
        del fbank[key]
    assert _without_front_end(fbank) == _without_front_end(cosgauss)


def test_relevance_variant_builds_the_front_end(tmp_path):
    with open(COSGAUSS_YAML, encoding="utf-8") as f:
        text = relevance_variant(f.read())
    # Loading builds the checkpointer, which creates its folder.
    hparams = load_hyperpyyaml(
        text, {"data_folder": "unused", "output_folder": str(tmp_path)}
    )
    front = hparams["compute_features"]
    assert type(front).__name__ == "RelevanceFrontEnd"
    assert front.relevance.n_heads == 2
    assert front(torch.randn(2, 8000)).shape == (2, 51, 80)
    # The front-end's weights train (the optimiser takes modules'
    # parameters) and are checkpointed.
    assert hparams["modules"]["compute_features"] is front
    assert hparams["checkpointer"].recoverables["compute_features"] is front


def test_fbank_relevance_yaml_wraps_fbank_in_one_block():
    """Relevance on SpeechBrain's own Fbank: one block, nothing else."""
    yaml = YAML()
    with open(FBANK_YAML, encoding="utf-8") as f:
        fbank = yaml.load(f)
    with open(FBANK_RELEVANCE_YAML, encoding="utf-8") as f:
        wrapped = yaml.load(f)
    block = wrapped["compute_features"]
    assert block.tag.value.endswith("RelevanceFrontEnd")
    assert block["filterbank"].tag.value.endswith("features.Fbank")
    assert {k: v.value for k, v in block["filterbank"].items()} == {
        k: v.value for k, v in fbank["compute_features"].items()
    }
    assert _without_front_end(fbank) == _without_front_end(wrapped)


def test_fbank_relevance_front_end_shapes_and_lengths(tmp_path):
    hparams = load_hyperpyyaml(
        open(FBANK_RELEVANCE_YAML, encoding="utf-8").read(),
        {"data_folder": "unused", "output_folder": str(tmp_path)},
    )
    front = hparams["compute_features"]
    wavs = torch.randn(2, 8000)
    lens = torch.tensor([1.0, 0.5])
    feats = front(wavs, lens)
    assert feats.shape == (2, 51, 80)
    # The lengths reach the relevance weighting (Fbank takes none): the
    # half-length clip's padding frames are zeros after min-max scaling.
    assert torch.all(feats[1, 27:] == 0)
    assert feats[1, :20].max() == 1.0
    assert hparams["checkpointer"].recoverables["compute_features"] is front


def test_export_loads_trained_weights_from_another_cwd(
    trained, tmp_path, monkeypatch
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model = EncoderClassifier.from_hparams(
        source=str(trained["model"]), savedir=str(tmp_path / "savedir")
    )
    front = model.mods.compute_features
    expected = {"fbank": "Fbank", "cosgauss": "CosGaussFilterbank",
                "relevance": "RelevanceFrontEnd",
                "fbank_relevance": "RelevanceFrontEnd"}[trained["variant"]]
    assert type(front).__name__ == expected

    # A fresh build of the same yaml, without the pretrainer, holds the
    # initial weights: the trained ones must differ from it (so the check
    # below can tell loading from not loading) and the loaded ones must
    # equal the checkpoint exactly.
    with open(trained["model"] / "hyperparams.yaml", encoding="utf-8") as f:
        fresh = load_hyperpyyaml(f)
    for name in ("compute_features", "embedding_model", "classifier"):
        saved = _trained_state(trained["checkpoint"], name)
        loaded = getattr(model.mods, name).state_dict()
        initial = fresh[name].state_dict()
        assert set(loaded) == set(saved)
        for key, value in saved.items():
            assert torch.equal(loaded[key], value), f"{name}.{key}"
        if name == "compute_features" and trained["variant"] == "fbank":
            continue  # a fixed front-end: nothing to train
        assert any(
            not torch.equal(initial[k], saved[k])
            for k in saved
            if saved[k].is_floating_point()
        ), f"{name} did not change in training"
    if trained["variant"] in RELEVANCE:
        saved = _trained_state(trained["checkpoint"], "compute_features")
        assert any(k.startswith("relevance.heads.") for k in saved)

    with open(trained["run"] / "save" / "label_encoder.txt") as f:
        saved_labels = f.read()
    assert all(repr(label) in saved_labels for label in CLASSES)


def test_classify_batch_and_file(trained, data_folder, tmp_path,
                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = EncoderClassifier.from_hparams(
        source=str(trained["model"]), savedir=str(tmp_path / "savedir")
    )
    wavs = torch.stack([
        torch.from_numpy(
            sf.read(str(data_folder / f"{c}_3.wav"), dtype="float32")[0]
        )
        for c in CLASSES
    ])
    out_prob, score, index, labels = model.classify_batch(wavs)
    assert out_prob.shape == (3, 3)
    assert index.shape == (3,)
    assert set(labels) <= set(CLASSES)
    # The resampling, downmixing file path too (the 22.05 kHz stereo clip).
    _, _, _, label = model.classify_file(str(data_folder / "mid_1.wav"))
    assert label[0] in CLASSES


def test_export_is_relocatable(trained, tmp_path, monkeypatch):
    moved = tmp_path / "somewhere" / "model"
    shutil.copytree(trained["model"], moved)
    with open(moved / "hyperparams.yaml", encoding="utf-8") as f:
        pretrainer = YAML().load(f)["pretrainer"]
    # The exported yaml names no file: only the source folder does.
    assert "paths" not in pretrainer
    monkeypatch.chdir(tmp_path / "somewhere")
    model = verify_export("model")
    saved = _trained_state(trained["checkpoint"], "embedding_model")
    for key, value in model.mods.embedding_model.state_dict().items():
        assert torch.equal(value, saved[key])


def test_verify_catches_a_module_that_did_not_load(trained, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(trained["model"], broken)
    path = broken / "hyperparams.yaml"
    # Fbank has no weights to lose; the learnable front-ends do.
    key = "embedding_model" if trained["variant"] == "fbank" else (
        "compute_features")
    text = path.read_text()
    line = f"        {key}: !ref <{key}>\n"
    assert text.count(line) == 1  # the pretrainer's loadable
    path.write_text(text.replace(line, ""))
    with pytest.raises(ExportError, match=key):
        verify_export(str(broken))


def test_cli_exports_latest(trained, tmp_path, capsys):
    out = tmp_path / "cli_model"
    assert main(
        [str(trained["run"]), str(out), "--latest", "--no_verify"]
    ) == 0
    assert "Exported" in capsys.readouterr().out
    names = sorted(os.listdir(out))
    assert names == [
        "README.md", "classifier.ckpt", "compute_features.ckpt",
        "embedding_model.ckpt", "hyperparams.yaml", "label_encoder.ckpt",
        "mean_var_norm.ckpt",
    ]
    # The recipe folder's script is the same exporter.
    script = os.path.join(RECIPE_DIR, "export_encoder.py")
    proc = subprocess.run(
        [sys.executable, script, str(trained["run"]), str(out)],
        capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "not empty" in proc.stderr
    # A successful export says so once (not once per logger and print).
    proc = subprocess.run(
        [sys.executable, "-m", "speechbrain_relevance.export",
         str(trained["run"]), str(tmp_path / "again"), "--latest",
         "--no_verify"],
        capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (proc.stdout + proc.stderr).count("Exported") == 1


def test_model_card_and_no_local_paths(trained):
    model, run = trained["model"], trained["run"]
    with open(model / "README.md", encoding="utf-8") as f:
        card = f.read()
    front = YAML().load(card.split("---\n")[1])
    assert front["license"] == "apache-2.0"
    assert front["pipeline_tag"] == "audio-classification"
    assert front["library_name"] == "speechbrain"
    assert {"speechbrain", "audio-classification", "ecapa-tdnn"} <= set(
        front["tags"]
    )
    cosgauss = trained["variant"] in ("cosgauss", "relevance")
    assert ("cos-gauss" in front["tags"]) == cosgauss
    assert ("relevance-weighting" in front["tags"]) == (
        trained["variant"] in RELEVANCE
    )
    assert "pip install speechbrain-relevance" in card
    assert "EncoderClassifier.from_hparams(" in card
    # The training command: the project's yamls with the recipe's script;
    # the user's own yaml (relevance variant) by its file name only.
    command = card.split("## Training")[1].split("```")[1]
    if trained["variant"] == "relevance":
        assert " ecapa_relevance.yaml" in command
    else:
        assert "recipes/other_recipes/train_ecapa.py" in command
        assert "recipes/other_recipes/ecapa_" in command
    assert "--n_mels=40" in command and "--output_folder" not in command
    assert "@inproceedings{dutta2021multihead" in card
    assert "SpeechBrain" in card.split("## Citation")[1]
    # The recipe's measured test metrics (train_ecapa.py writes them).
    with open(run / "test_results.json") as f:
        results = json.load(f)
    assert results["n"] == 3
    assert f"| Accuracy | {results['accuracy']:.4f} |" in card
    assert "min error" in card
    # Nothing written names the run's folders (absolute paths).
    for name in os.listdir(model):
        data = (model / name).read_bytes()
        for path in (str(run), str(trained["root"]), os.getcwd()):
            assert path.encode() not in data, (name, path)


def test_analysis_counts_every_module(trained, tmp_path):
    out = tmp_path / "analysis"
    assert analysis_main([str(trained["model"]), "--out", str(out)]) == 0
    with open(out / "parameters.json") as f:
        params = json.load(f)
    model = EncoderClassifier.from_hparams(
        source=str(trained["model"]), savedir=str(tmp_path / "savedir")
    )
    total = sum(
        p.numel() for module in model.mods.values()
        for p in module.parameters()
    )
    embedding = sum(
        p.numel() for p in model.mods.embedding_model.parameters()
    )
    assert params["total"] == total
    assert params["other_modules"]["embedding_model"]["parameters"] == (
        embedding
    )
    assert embedding > params["front_end"] + params["classifier"][
        "parameters"]


def test_export_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="hyperparams.yaml"):
        export_model(str(tmp_path), str(tmp_path / "m"))


def test_train_ecapa_joins_the_process_group(monkeypatch, tmp_path):
    # torchrun needs the process group before any collective call: the
    # script must join it right after reading its options and yaml, with
    # the parsed options and the yaml's collective time limit.
    from speechbrain_relevance.training import brain

    calls = []

    class Joined(Exception):
        pass

    def fake_init(run_opts, timeout_s=None):
        calls.append((run_opts, timeout_s))
        raise Joined

    monkeypatch.setattr(brain, "init_distributed", fake_init)
    with pytest.raises(Joined):
        train_ecapa.main([COSGAUSS_YAML, "--device=cpu",
                          f"--data_folder={tmp_path}",
                          f"--output_folder={tmp_path / 'out'}",
                          "--distributed_backend=gloo",
                          "--ddp_timeout_s=60"])
    run_opts, timeout_s = calls[0]
    assert run_opts["device"] == "cpu"
    assert run_opts["distributed_backend"] == "gloo"
    assert timeout_s == 60


def test_cosgauss_yaml_checkpoints_the_front_end(tmp_path):
    with open(COSGAUSS_YAML, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(
            f, {"data_folder": "unused", "output_folder": str(tmp_path)}
        )
    front = hparams["compute_features"]
    assert hparams["checkpointer"].recoverables["compute_features"] is front


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_export_gives_the_test_stage_scores_and_accuracy(
    trained, tmp_path, monkeypatch
):
    """Exported with the defaults, loaded elsewhere, file by file: the
    scores of the recipe Brain's test stage and the run's test accuracy."""
    import speechbrain as sb

    run = trained["run"]
    with open(run / "hyperparams.yaml", encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f)
    brain = train_ecapa.EmbeddingClassifierBrain(
        modules=hparams["modules"],
        hparams=hparams,
        run_opts={"device": "cpu"},
        checkpointer=hparams["checkpointer"],
    )
    assert brain.checkpointer.recover_if_possible(min_key="error")
    brain.modules.eval()
    brain.features_take_lengths = train_ecapa.accepts_lengths(
        brain.modules.compute_features
    )
    test = train_ecapa.dataio_prep(hparams)["test"]
    expected = {}
    with torch.no_grad():
        for batch in sb.dataio.dataloader.make_dataloader(test, batch_size=1):
            scores, _ = brain.compute_forward(batch, sb.Stage.TEST)
            expected[batch.id[0]] = scores[0, 0]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model = EncoderClassifier.from_hparams(
        source=os.path.relpath(trained["model"], elsewhere),
        savedir=str(tmp_path / "savedir"),
    )
    with open(hparams["test_annotation"], encoding="utf-8") as f:
        manifest = json.load(f)
    correct = 0
    for uid, entry in manifest.items():
        path = entry["wav"].replace("{data_root}", hparams["data_folder"])
        out_prob, _, _, label = model.classify_file(path)
        assert torch.allclose(out_prob[0], expected[uid], atol=1e-5), uid
        correct += label[0] == entry["class"]
    with open(run / "test_results.json", encoding="utf-8") as f:
        reported = json.load(f)
    assert reported["n"] == len(manifest)
    assert correct / len(manifest) == pytest.approx(reported["accuracy"])
