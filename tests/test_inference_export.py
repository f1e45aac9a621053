"""Export a trained recipe run, load it elsewhere, classify like the Brain.

The round trip: a tiny DCASE2020 run (1 epoch, tiny FCN, synthetic data)
is exported to a model folder, which a fresh Python process loads with
``RelevanceClassifier.from_hparams`` from another current directory
(holding decoy checkpoints with the same names, so that any path resolved
against the current directory would change the predictions). Its
per-file predictions must equal those of the recipe's own ``SceneBrain``
with the run's checkpoint, computed here from the run's
``hyperparams.yaml``. The same for a tiny UrbanSound8k fold trained on
patches (CNN-LSTM, ``classifier_input: sequence``) and a tiny FSDD fold
on real speech (clips of different lengths, per-band standardisation),
each exported with the exporter's defaults: every exported model must
give its run's test accuracy exactly, and a batch of clips the same
posteriors as the clips one by one.

Subprocesses get ``OMP_NUM_THREADS=1``: on a small shared CPU machine,
OpenMP threads spin-waiting for busy cores make tiny operations slow.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.encoder import CategoricalEncoder

from speechbrain_relevance.errors import AudioFileError, CheckpointFileError
from speechbrain_relevance.export import export_model, main
from speechbrain_relevance.inference import RelevanceClassifier
from speechbrain_relevance.models import aggregate_patch_posteriors

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "DCASE2020"),
    os.path.join(_RECIPES, "UrbanSound8k"),
]
from synthetic_dcase2020 import generate_synthetic_dcase  # noqa: E402
from synthetic_urbansound8k import (  # noqa: E402
    generate_synthetic_urbansound,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DCASE = os.path.join(REPO, "recipes", "DCASE2020")
US8K = os.path.join(REPO, "recipes", "UrbanSound8k")
FSDD = os.path.join(REPO, "recipes", "FSDD")
FSDD_DATA = os.path.join(REPO, "tests", "data", "fsdd")
#: Manifest field of each recipe's class name.
LABEL_KEYS = {
    "dcase": "scene", "us8k": "class", "fsdd": "digit",
    "fsdd_on_mel": "digit",
}
MODULE_FILES = ("compute_features.ckpt", "relevance.ckpt", "classifier.ckpt")

#: The fresh process: for each (model folder given relative to its cwd,
#: files, output) triple, load the folder, classify every file one by one
#: and all of them as one padded batch.
LOADER = """
import json, sys, torch
from speechbrain_relevance.inference import RelevanceClassifier
args = sys.argv[1:]
for source, files_json, out_json in zip(args[::3], args[1::3], args[2::3]):
    with open(files_json) as f:
        files = json.load(f)
    clf = RelevanceClassifier.from_hparams(
        source=source, run_opts={"device": "cpu"}
    )
    result = {"files": {}}
    for uid, path in files.items():
        out_prob, score, index, text_lab = clf.classify_file(path)
        result["files"][uid] = {
            "prob": out_prob.exp()[0].tolist(),
            "score": float(score[0]),
            "index": int(index[0]),
            "label": text_lab[0],
        }
    wavs = [clf.load_audio(p) for p in files.values()]
    batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    lens = torch.tensor([w.shape[0] / batch.shape[1] for w in wavs])
    result["batch"] = clf.classify_batch(batch, lens)[0].exp().tolist()
    with open(out_json, "w") as f:
        json.dump(result, f)
"""


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (REPO, env.get("PYTHONPATH")) if p
    )
    return env


def _start(cmd, cwd):
    return subprocess.Popen(
        cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def _finish(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} failed:\n{out[-3000:]}\n{err[-5000:]}"
    )


def _load_recipe(name, folder):
    """Import a recipe's train.py under a unique module name."""
    sys.path.insert(0, folder)  # it imports its data preparation
    try:
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(folder, "train.py")
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Train a DCASE run and an UrbanSound8k fold, side by side."""
    root = tmp_path_factory.mktemp("inference_export")
    dcase_data = generate_synthetic_dcase(
        str(root / "dcase"), n_cities=2, n_locations_per_city=2,
        n_segments_per_location=1, duration=1.0, seed=0,
    )
    us8k_data = generate_synthetic_urbansound(
        str(root / "us8k"), clips_per_class_per_fold=1, seed=0,
        max_duration=0.3, min_duration=0.1,
    )
    dcase_run = str(root / "dcase_run")
    us8k_out = str(root / "us8k_run")
    procs = [
        _start([
            sys.executable, os.path.join(DCASE, "train.py"),
            os.path.join(DCASE, "hparams", "relevance_2head.yaml"),
            f"--data_folder={dcase_data}", f"--output_folder={dcase_run}",
            "--number_of_epochs=1", "--fcn_width=0.0625", "--batch_size=4",
            "--num_workers=0", "--crop_frames=24", "--device=cpu",
            "--noprogressbar",
        ], cwd=str(root)),
        _start([
            sys.executable, os.path.join(US8K, "train.py"),
            os.path.join(US8K, "hparams", "relevance_2head.yaml"),
            f"--data_folder={us8k_data}", "--test_fold=4",
            f"--output_folder={us8k_out}", "--number_of_epochs=1",
            "--batch_size=16", "--num_workers=0", "--clip_duration=0.3",
            "--n_bands=12", "--conv_channels=2", "--lstm_size=8",
            "--lstm_layers=1", "--fc_size=8", "--patch_frames=8",
            "--device=cpu", "--noprogressbar",
        ], cwd=str(root)),
        _start([
            sys.executable, os.path.join(FSDD, "train.py"),
            os.path.join(FSDD, "hparams", "relevance_2head.yaml"),
            f"--data_folder={FSDD_DATA}", "--test_fold=theo",
            f"--output_folder={root / 'fsdd_run'}", "--number_of_epochs=2",
            "--cnn_channels=[4]", "--feature_norm=sentence",
            "--device=cpu", "--noprogressbar",
        ], cwd=str(root)),
        # Relevance weighting on a fixed log-mel filterbank (issue 31).
        _start([
            sys.executable, os.path.join(FSDD, "train.py"),
            os.path.join(FSDD, "hparams", "relevance_2head_on_mel.yaml"),
            f"--data_folder={FSDD_DATA}", "--test_fold=theo",
            f"--output_folder={root / 'fsdd_mel_run'}",
            "--number_of_epochs=2", "--cnn_channels=[4]",
            "--device=cpu", "--noprogressbar",
        ], cwd=str(root)),
    ]
    for proc in procs:
        _finish(proc)
    return {
        "root": root,
        "dcase": dcase_run,
        "dcase_data": dcase_data,
        "us8k": os.path.join(us8k_out, "fold4"),
        "us8k_cv": us8k_out,
        "fsdd": str(root / "fsdd_run" / "fold_theo"),
        "fsdd_on_mel": str(root / "fsdd_mel_run" / "fold_theo"),
    }


@pytest.fixture(scope="module")
def models(runs):
    """Both runs exported (the DCASE one through the command line)."""
    dcase = str(runs["root"] / "dcase_model")
    assert main([runs["dcase"], dcase]) == 0
    us8k = str(runs["root"] / "us8k_model")
    export_model(runs["us8k"], us8k, verify=False)
    fsdd = str(runs["root"] / "fsdd_model")
    export_model(runs["fsdd"], fsdd)
    on_mel = str(runs["root"] / "fsdd_on_mel_model")
    export_model(runs["fsdd_on_mel"], on_mel)
    return {
        "dcase": dcase, "us8k": us8k, "fsdd": fsdd, "fsdd_on_mel": on_mel
    }


@pytest.fixture(scope="module")
def dcase_model(models):
    return models["dcase"]


def _test_files(run_folder):
    manifest = os.path.join(run_folder, "manifests", "test.json")
    with open(manifest) as f:
        return {uid: entry["wav"] for uid, entry in json.load(f).items()}


def _brain_probabilities(recipe, brain_class, run_folder):
    """The recipe Brain's test-set posteriors with the run's checkpoint.

    Built from the run's own ``hyperparams.yaml`` and best checkpoint
    (by accuracy, as the recipe tests), evaluated in eval mode.
    """
    train = _load_recipe(f"{brain_class}_recipe", recipe)
    with open(os.path.join(run_folder, "hyperparams.yaml")) as f:
        hparams = load_hyperpyyaml(f)
    brain = getattr(train, brain_class)(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"device": "cpu"},
        checkpointer=hparams["checkpointer"],
    )
    assert brain.checkpointer.recover_if_possible(max_key="acc") is not None
    brain.modules.eval()
    manifest = os.path.join(run_folder, "manifests", "test.json")
    data = train.dataio_prep(hparams, {"test": manifest})["test"]
    loader = sb.dataio.dataloader.make_dataloader(data, batch_size=4)
    probs = {}
    with torch.no_grad():
        for batch in loader:
            out = brain.compute_forward(batch, sb.Stage.TEST)
            ids = list(batch.id)
            if getattr(brain, "patch_mode", False):
                # Patch logits -> clip posteriors, as the recipe reports.
                order, out = aggregate_patch_posteriors(
                    out, brain._owner.tolist(),
                    method=hparams["patch_aggregation"],
                )
                ids = [ids[i] for i in order]
            for uid, p in zip(ids, torch.softmax(out.float(), dim=-1)):
                probs[uid] = p
    return probs, list(hparams["labels"])


def _plant_decoys(model_folder, cwd):
    """Same-named files with other contents in the loader's cwd."""
    for name in MODULE_FILES:
        state = torch.load(
            os.path.join(model_folder, name), weights_only=True
        )
        torch.save({k: v + 0.5 for k, v in state.items()}, cwd / name)
    encoder = CategoricalEncoder()
    encoder.load(os.path.join(model_folder, "label_encoder.txt"))
    labels = [encoder.ind2lab[i] for i in range(len(encoder))]
    decoy = CategoricalEncoder()
    decoy.update_from_iterable(labels[::-1])
    decoy.save(cwd / "label_encoder.txt")


@pytest.fixture(scope="module")
def round_trips(runs, models):
    """Fresh-process predictions and the Brains' ones, for both runs.

    The fresh process runs while this process computes the Brains'.
    """
    root = runs["root"]
    cwd = root / "elsewhere"
    os.makedirs(cwd)
    _plant_decoys(models["dcase"], cwd)
    loader = root / "loader.py"
    loader.write_text(LOADER)
    args = []
    for name in ("dcase", "us8k", "fsdd", "fsdd_on_mel"):
        source = os.path.relpath(models[name], cwd)
        assert not os.path.isabs(source)
        files_json = root / f"{name}_files.json"
        files_json.write_text(json.dumps(_test_files(runs[name])))
        args += [source, str(files_json), str(root / f"{name}_out.json")]
    proc = _start([sys.executable, str(loader), *args], cwd=str(cwd))
    try:
        brains = {
            "dcase": _brain_probabilities(DCASE, "SceneBrain", runs["dcase"]),
            "us8k": _brain_probabilities(
                US8K, "UrbanSoundBrain", runs["us8k"]
            ),
            "fsdd": _brain_probabilities(FSDD, "DigitBrain", runs["fsdd"]),
            "fsdd_on_mel": _brain_probabilities(
                FSDD, "DigitBrain", runs["fsdd_on_mel"]
            ),
        }
    finally:
        _finish(proc)
    loaded = {
        name: json.loads((root / f"{name}_out.json").read_text())
        for name in brains
    }
    return brains, loaded


def _check_same_predictions(runs, round_trips, name):
    (probs, labels), result = (
        round_trips[0][name], round_trips[1][name]
    )
    files = _test_files(runs[name])
    assert set(result["files"]) == set(probs) == set(files)
    assert len(probs) >= 10
    for uid, got in result["files"].items():
        expected = probs[uid].numpy()
        assert np.allclose(got["prob"], expected, atol=1e-5), uid
        top2 = np.sort(expected)[-2:]
        if top2[1] - top2[0] > 1e-5:  # not a tie within float noise
            assert got["index"] == int(expected.argmax()), uid
        assert got["label"] == labels[got["index"]]
        assert np.isclose(np.exp(got["score"]), max(got["prob"]))
    batch = np.array(result["batch"])
    single = np.array([result["files"][u]["prob"] for u in files])
    assert np.allclose(batch, single, atol=1e-5)
    # Exactly the accuracy the run's test stage reported.
    with open(os.path.join(runs[name], "manifests", "test.json")) as f:
        truth = {u: str(e[LABEL_KEYS[name]]) for u, e in json.load(f).items()}
    with open(os.path.join(runs[name], "test_results.json")) as f:
        reported = json.load(f)
    correct = sum(result["files"][u]["label"] == truth[u] for u in files)
    assert correct / len(files) == pytest.approx(reported["accuracy"])
    assert len(files) == reported["n"]


def test_dcase_round_trip(runs, models, round_trips):
    assert sorted(os.listdir(models["dcase"])) == sorted(
        [*MODULE_FILES, "hyperparams.yaml", "label_encoder.txt", "README.md"]
    )
    _check_same_predictions(runs, round_trips, "dcase")


def test_us8k_patch_round_trip(runs, models, round_trips):
    with open(os.path.join(models["us8k"], "hyperparams.yaml")) as f:
        text = f.read()
    assert "classifier_input: sequence" in text
    assert "patch_frames: 8" in text and "clip_duration: 0.3" in text
    _check_same_predictions(runs, round_trips, "us8k")


def test_fsdd_round_trip_with_the_defaults(runs, models, round_trips):
    """Clips of different lengths, exported with no option at all."""
    with open(os.path.join(models["fsdd"], "hyperparams.yaml")) as f:
        text = f.read()
    # The run's own clip policy and normalisation: no padding to a
    # minimum duration that training never applied.
    assert "max_duration: 1.5" in text and "min_duration" not in text
    assert "feature_norm: sentence" in text
    _check_same_predictions(runs, round_trips, "fsdd")
    lengths = {
        sf.info(p).frames for p in _test_files(runs["fsdd"]).values()
    }
    assert len(lengths) > 5  # the batch check above mixed lengths


def test_fsdd_relevance_on_mel_round_trip(runs, models, round_trips):
    """Relevance weighting after the fixed MelFilterbank: the export
    classifies with the run's posteriors and accuracy."""
    with open(os.path.join(models["fsdd_on_mel"], "hyperparams.yaml")) as f:
        text = f.read()
    assert "lobes.MelFilterbank" in text
    assert "lobes.MultiHeadRelevance" in text
    assert sorted(os.listdir(models["fsdd_on_mel"])) == sorted(
        [*MODULE_FILES, "hyperparams.yaml", "label_encoder.txt", "README.md"]
    )
    _check_same_predictions(runs, round_trips, "fsdd_on_mel")


def test_exported_files(runs, dcase_model):
    with open(os.path.join(dcase_model, "hyperparams.yaml")) as f:
        hparams = f.read()
    # Inference only: no data paths, no training keys.
    for word in ("data_folder", "output_folder", runs["dcase_data"],
                 "opt_class", "checkpointer", "lr_scheduler", "mixup",
                 str(runs["root"])):
        assert word not in hparams, word
    assert "classifier_input: deltas" in hparams
    assert "trust" in hparams

    encoder = CategoricalEncoder()
    encoder.load(os.path.join(dcase_model, "label_encoder.txt"))
    with open(os.path.join(runs["dcase"], "test_results.json")) as f:
        results = json.load(f)
    assert [encoder.ind2lab[i] for i in range(len(encoder))] == (
        results["labels"]
    )

    with open(os.path.join(dcase_model, "README.md")) as f:
        card = f.read()
    assert "recipes/DCASE2020/train.py" in card
    assert "recipes/DCASE2020/hparams/relevance_2head.yaml" in card
    for arg in ("--number_of_epochs=1", "--fcn_width=0.0625",
                "--crop_frames=24",
                "--data_folder=/path/to/TAU-urban-acoustic-scenes-2020-"):
        assert arg in card, arg
    assert "--output_folder" not in card and str(runs["root"]) not in card
    assert f"| Test examples (n) | {results['n']} |" in card
    assert f"| Accuracy | {results['accuracy']:.4f} |" in card
    assert f"| Log loss | {results['log_loss']:.4f} |" in card
    assert "| street_traffic |" in card and "synthetic stand-in" in card
    assert "only load model folders from sources you trust" in card.lower()


@pytest.mark.parametrize("name", ["dcase", "us8k"])
def test_model_card_metadata_and_no_local_paths(runs, models, name):
    folder = models[name]
    with open(os.path.join(folder, "README.md")) as f:
        card = f.read()
    assert card.startswith("---\n")
    front = load_hyperpyyaml(card.split("---\n")[1])
    assert front["license"] == "apache-2.0"
    assert front["pipeline_tag"] == "audio-classification"
    assert front["library_name"] == "speechbrain"
    dataset = {"dcase": "dcase2020", "us8k": "urbansound8k"}[name]
    for tag in ("speechbrain", "audio-classification", dataset,
                "relevance-weighting", "cos-gauss"):
        assert tag in front["tags"], tag
    assert "pip install speechbrain-relevance" in card
    assert "RelevanceClassifier.from_hparams(" in card
    assert "## Citation" in card and "Ganapathy" in card
    assert "@misc{speechbrainV1" in card
    # No file of the model folder names a folder of this machine.
    for fname in os.listdir(folder):
        with open(os.path.join(folder, fname), "rb") as f:
            data = f.read()
        for path in (runs[name], str(runs["root"]), REPO):
            assert path.encode() not in data, (fname, path)


def _cli(*args, cwd=None):
    """Run the exporter's command line in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "speechbrain_relevance.export", *args],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300,
    )


def _assert_one_line_error(proc, words):
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "error:" in lines[0] and words in lines[0], lines[0]


def test_cli_bad_input_is_one_line(runs, tmp_path):
    missing = str(tmp_path / "no_such_run")
    _assert_one_line_error(_cli(missing, str(tmp_path / "m")), missing)

    # A run folder without checkpoints.
    bare = tmp_path / "bare_run"
    bare.mkdir()
    shutil.copy(os.path.join(runs["dcase"], "hyperparams.yaml"), bare)
    _assert_one_line_error(_cli(str(bare), str(tmp_path / "m")), "save")

    # A run of no recipe the exporter knows.
    odd = tmp_path / "odd_run"
    odd.mkdir()
    (odd / "hyperparams.yaml").write_text(
        "sample_rate: 16000\nwav2vec2: !new:torch.nn.Identity\n"
        "modules:\n    wav2vec2: !ref <wav2vec2>\n"
    )
    _assert_one_line_error(
        _cli(str(odd), str(tmp_path / "m")), "Unknown recipe run"
    )

    # The cross-validation root of UrbanSound8k names its folds.
    _assert_one_line_error(_cli(runs["us8k_cv"], str(tmp_path / "m")),
                           "fold4")


def test_both_option_spellings(runs, tmp_path, capsys):
    for flag in ("--max-key", "--max_key"):
        out = str(tmp_path / flag.strip("-"))
        assert main([runs["dcase"], out, flag, "acc", "--no_verify"]) == 0
        assert os.path.isfile(os.path.join(out, "hyperparams.yaml"))
    with pytest.raises(SystemExit) as exit_:
        main([runs["dcase"], str(tmp_path / "nope"), "--min-key", "nope"])
    assert exit_.value.code == 1
    assert "'nope'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def classifier(dcase_model):
    return RelevanceClassifier.from_hparams(
        source=dcase_model, run_opts={"device": "cpu"}
    )


def test_any_rate_channels_and_length(classifier, tmp_path):
    rng = np.random.default_rng(0)
    stereo = tmp_path / "stereo_22k.wav"
    sf.write(stereo, 0.3 * rng.standard_normal((22050, 2)), 22050)
    short = tmp_path / "short_8k.wav"
    sf.write(short, 0.3 * rng.standard_normal(400), 8000, subtype="PCM_16")
    for path in (stereo, short):
        out_prob, score, index, text_lab = classifier.classify_file(str(path))
        assert out_prob.shape == (1, 10)
        assert torch.allclose(out_prob.exp().sum(), torch.tensor(1.0))
        assert text_lab[0] in classifier.labels
    # The 50 ms clip is padded to min_duration (1 s: 44 frames).
    rep = classifier.representation_file(str(short))
    assert rep.features.shape == (1, 44, 80)
    assert rep.masks.shape == rep.features.shape
    assert ((rep.masks > 0) & (rep.masks < 1)).all()
    assert rep.weighted.min() >= 0 and rep.weighted.max() <= 1
    assert torch.equal(classifier.encode_batch(classifier.load_audio(
        str(short)).unsqueeze(0)), rep.weighted)


def test_unreadable_audio_names_the_file(classifier, tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00not really a wave file" * 10)
    with pytest.raises(AudioFileError, match="corrupt.wav"):
        classifier.classify_file(str(corrupt))
    with pytest.raises(AudioFileError, match="missing.wav"):
        classifier.classify_file(str(tmp_path / "missing.wav"))


def test_missing_or_unsafe_files_fail_clearly(dcase_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(dcase_model, broken)
    os.remove(broken / "relevance.ckpt")
    os.remove(broken / "label_encoder.txt")
    with pytest.raises(FileNotFoundError) as err:
        RelevanceClassifier.from_hparams(source=str(broken))
    assert "relevance.ckpt" in str(err.value)
    assert "label_encoder.txt" in str(err.value)
    assert str(broken) in str(err.value)
    with pytest.raises(FileNotFoundError, match="not found"):
        RelevanceClassifier.from_hparams(source=str(tmp_path / "nowhere"))

    # A checkpoint that needs arbitrary unpickling is refused.
    unsafe = tmp_path / "unsafe"
    shutil.copytree(dcase_model, unsafe)
    torch.save({"payload": _Payload()}, unsafe / "classifier.ckpt")
    with pytest.raises(CheckpointFileError, match="refused") as err:
        RelevanceClassifier.from_hparams(source=str(unsafe))
    # The message names the refused file.
    assert "classifier.ckpt" in str(err.value)


class _Payload:
    """Stands for any object a pickle could smuggle into a checkpoint."""


def test_export_errors(runs, dcase_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="fold4"):
        export_model(runs["us8k_cv"], str(tmp_path / "m"))
    with pytest.raises(FileExistsError):
        export_model(runs["dcase"], dcase_model)
    with pytest.raises(FileNotFoundError, match="nope"):
        export_model(runs["dcase"], str(tmp_path / "m"), max_key="nope")


def test_hub_source_fetches_every_file_from_the_hub(dcase_model, monkeypatch):
    """Shared on the hub, the folder loads by id (fetch is faked)."""
    import pathlib

    import speechbrain.inference.interfaces as interfaces
    import speechbrain.utils.parameter_transfer as transfer

    calls = []

    def fake_fetch(filename, source, savedir=None, save_filename=None,
                   **kwargs):
        calls.append((str(source), filename))
        assert str(source) == "someone/relevance-dcase"
        return pathlib.Path(dcase_model) / filename

    monkeypatch.setattr(interfaces, "fetch", fake_fetch)
    monkeypatch.setattr(transfer, "fetch", fake_fetch)
    clf = RelevanceClassifier.from_hparams(
        source="someone/relevance-dcase", run_opts={"device": "cpu"}
    )
    assert sorted(name for _, name in calls) == sorted(
        ["hyperparams.yaml", "label_encoder.txt", *MODULE_FILES]
    )
    assert clf.labels[0] == "airport"


def test_encoder_classifier_refuses_a_project_folder(models, tmp_path):
    from speechbrain.inference.classifiers import EncoderClassifier

    with pytest.raises(ValueError, match="RelevanceClassifier.from_hparams"):
        EncoderClassifier.from_hparams(
            source=models["fsdd"], savedir=str(tmp_path / "savedir")
        )


def test_a_run_without_a_pipeline_is_not_guessed(runs, tmp_path):
    from speechbrain_relevance.errors import ExportError

    run = tmp_path / "old_run"
    shutil.copytree(runs["fsdd"], run)
    path = run / "hyperparams.yaml"
    text = path.read_text()
    start = text.index("\npipeline:")
    end = text.index("\nmodules:")
    path.write_text(text[:start] + text[end:])
    with pytest.raises(ExportError, match="has no 'pipeline'"):
        export_model(str(run), str(tmp_path / "model"))


# Issue 29: the edges of export and inference.


def _unfinished_copy(run_folder, folder):
    """A finished FSDD run as if killed before its last epochs averaged."""
    import yaml

    shutil.copytree(run_folder, folder)
    (meta_path,) = (folder / "save").glob("CKPT+*/CKPT.yaml")
    meta = yaml.safe_load(meta_path.read_text())
    del meta["averaged_epochs"]
    meta_path.write_text(yaml.safe_dump(meta))
    return str(folder)


def test_unfinished_run_is_not_exported_silently(runs, tmp_path):
    run = _unfinished_copy(runs["fsdd"], tmp_path / "killed")
    proc = _cli(run, str(tmp_path / "m"))
    _assert_one_line_error(proc, "has not finished: it averages its last")
    assert "--allow_unfinished" in proc.stderr
    assert not (tmp_path / "m").exists()
    result = export_model(run, str(tmp_path / "m2"), verify=False,
                          allow_unfinished=True)
    assert os.path.isfile(os.path.join(result.model_folder,
                                       "hyperparams.yaml"))


def test_damaged_checkpoint_is_one_line_for_the_analysis(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["fsdd"], run)
    (meta,) = (run / "save").glob("CKPT+*/CKPT.yaml")
    meta.write_bytes(bytes(range(128, 256)))
    proc = subprocess.run(
        [sys.executable, "-m", "speechbrain_relevance.analysis", str(run),
         "--out", str(tmp_path / "out")],
        env=_env(), capture_output=True, text=True, timeout=300,
    )
    _assert_one_line_error(proc, f"{meta}: unreadable checkpoint meta file")


def test_savedir_of_a_model_with_other_labels_is_refreshed(models, tmp_path):
    savedir = str(tmp_path / "savedir")
    first = RelevanceClassifier.from_hparams(
        source=models["dcase"], savedir=savedir, run_opts={"device": "cpu"}
    )
    second = RelevanceClassifier.from_hparams(
        source=models["fsdd"], savedir=savedir, run_opts={"device": "cpu"}
    )
    assert first.labels != second.labels
    assert second.labels == [str(d) for d in range(10)]
    assert second.label_encoder.decode_ndim(0) == "0"


def test_run_folder_is_not_loaded_as_a_model(runs, tmp_path):
    with pytest.raises(ValueError) as info:
        RelevanceClassifier.from_hparams(source=runs["fsdd"])
    message = str(info.value)
    assert "training run's folder" in message
    assert "speechbrain_relevance.export" in message
    savedir = tmp_path / "savedir"
    savedir.write_text("a file")
    with pytest.raises(NotADirectoryError, match="is a file"):
        RelevanceClassifier.from_hparams(
            source=runs["dcase"].replace("dcase_run", "dcase_model"),
            savedir=str(savedir),
        )


@pytest.mark.parametrize("shape", [(0,), (1, 0), (0, 100)])
def test_empty_input_is_called_empty(classifier, shape):
    with pytest.raises(ValueError, match="the input is empty"):
        classifier.classify_batch(torch.zeros(shape))
