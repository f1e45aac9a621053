"""The one classification pipeline (issue #17).

Its stages are what training, inference, the analyses and the exporter
run; these tests pin what it guarantees: a clip's posteriors do not
depend on its batch-mates, the clip policy is training's, the Brain and
the yaml agree on the modules, the figures show what the classifier
reads, and the loaders fail with messages that say what to do.
"""

import os

import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_relevance.analysis.figures import representation_panels
from speechbrain_relevance.errors import ConfigError
from speechbrain_relevance.inference import ModelFolderPretrainer
from speechbrain_relevance.lobes import CosGaussFilterbank, MultiHeadRelevance
from speechbrain_relevance.models import CompactCNN
from speechbrain_relevance.pipeline import ClassificationPipeline, ClipPolicy
from speechbrain_relevance.training.brain import RelevanceBrain, TrainingHooks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FSDD_HPARAMS = os.path.join(REPO, "recipes", "FSDD", "hparams")


def _pipeline(feature_norm="minmax", relevance=True):
    torch.manual_seed(0)
    return ClassificationPipeline(
        compute_features=CosGaussFilterbank(
            n_filters=8, sample_rate=8000, win_length=200, hop_length=80,
            kernel_size=129,
        ),
        relevance=(
            MultiHeadRelevance(n_bands=8, n_heads=2, context=2)
            if relevance else None
        ),
        classifier=CompactCNN(n_bands=8, n_classes=3, channels=[4, 8]),
        feature_norm=feature_norm,
        clip_policy=ClipPolicy(sample_rate=8000, max_duration=1.5),
    ).eval()


def test_a_clip_does_not_depend_on_its_batch_mates():
    pipeline = _pipeline()
    torch.manual_seed(1)
    clips = [torch.randn(n) for n in (3000, 2210, 4001)]
    longest = max(c.numel() for c in clips)
    batch = torch.stack(
        [torch.nn.functional.pad(c, (0, longest - c.numel())) for c in clips]
    )
    lens = torch.tensor([c.numel() / longest for c in clips])
    with torch.no_grad():
        together = pipeline(batch, lens)
        alone = torch.cat([pipeline(c[None]) for c in clips])
        # A different batch-mate changes nothing either.
        other = torch.stack([clips[1], torch.randn(2210)])
        pair = pipeline(other[:, :2210], torch.ones(2))
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-6)
    torch.testing.assert_close(pair[0], alone[1], rtol=0, atol=1e-6)


def test_clip_policy_is_what_training_loads():
    policy = ClipPolicy(sample_rate=8000, max_duration=0.5)
    wav = torch.linspace(-0.5, 0.25, 6000)
    out = policy(wav)
    assert out.numel() == 4000
    # Peak-normalised over the whole clip, then cropped.
    assert float(out.abs().max()) == pytest.approx(1.0, abs=1e-3)
    assert ClipPolicy(8000, min_duration=1.0)(torch.ones(10)).numel() == 8000
    with pytest.raises(ConfigError, match="not both"):
        ClipPolicy(8000, clip_duration=1.0, max_duration=2.0)
    with pytest.raises(ConfigError, match="max_duration"):
        ClipPolicy(8000, max_duration=-1)


def test_settings_rebuild_the_same_pipeline():
    pipeline = _pipeline(feature_norm="sentence")
    settings = pipeline.settings()
    assert settings["feature_norm"] == "sentence"
    assert settings["clip_policy"]["max_duration"] == 1.5
    policy = ClipPolicy(**settings.pop("clip_policy"))
    rebuilt = ClassificationPipeline(
        pipeline.compute_features, pipeline.classifier,
        relevance=pipeline.relevance, clip_policy=policy, **settings,
    ).eval()
    wavs = torch.randn(2, 3000)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(wavs), pipeline(wavs))


def test_with_modules_runs_other_module_objects():
    pipeline = _pipeline()
    classifier = CompactCNN(n_bands=8, n_classes=3, channels=[4, 8]).eval()
    other = pipeline.with_modules({"classifier": classifier})
    assert other.classifier is classifier
    assert pipeline.classifier is not classifier
    assert other.compute_features is pipeline.compute_features
    assert other.settings() == pipeline.settings()


def test_bad_settings_name_the_key():
    with pytest.raises(ConfigError, match="classifier_input"):
        ClassificationPipeline(torch.nn.Identity(), torch.nn.Identity(),
                               classifier_input="frames")
    with pytest.raises(ConfigError, match="patch_frames"):
        ClassificationPipeline(torch.nn.Identity(), torch.nn.Identity(),
                               classifier_input="deltas", patch_frames=8)
    with pytest.raises(ConfigError, match="feature_norm"):
        ClassificationPipeline(torch.nn.Identity(), torch.nn.Identity(),
                               feature_norm="zscore")


def _fsdd_yaml(name="relevance_2head.yaml", **overrides):
    with open(os.path.join(FSDD_HPARAMS, name), encoding="utf-8") as f:
        return load_hyperpyyaml(
            f, {"data_folder": "x", "test_fold": "theo", **overrides}
        )


def test_brain_runs_the_yamls_pipeline():
    hparams = _fsdd_yaml(cnn_channels=[4])
    brain = RelevanceBrain(
        modules=hparams["modules"], hparams=hparams,
        run_opts={"device": "cpu"},
    )
    assert brain.pipeline.settings() == hparams["pipeline"].settings()
    assert brain.pipeline.classifier is brain.modules["classifier"]
    brain.modules.eval()
    wavs = torch.randn(2, 3000)
    lens = torch.ones(2)
    brain._labels = torch.tensor([0, 1])
    with torch.no_grad():
        logits = brain.pipeline.scores(
            wavs, lens, TrainingHooks(brain, sb.Stage.TEST)
        ).logits
        expected = hparams["pipeline"](wavs, lens)
    torch.testing.assert_close(torch.log_softmax(logits, -1), expected)


def test_brain_refuses_a_pipeline_that_runs_other_modules():
    hparams = _fsdd_yaml(cnn_channels=[4])
    modules = dict(hparams["modules"])
    del modules["relevance"]  # trained and saved without the relevance
    brain = RelevanceBrain(
        modules=modules, hparams=hparams, run_opts={"device": "cpu"}
    )
    with pytest.raises(ConfigError, match="relevance is in the yaml's "
                       "pipeline but not in its modules"):
        brain.pipeline  # noqa: B018


def test_brain_without_a_pipeline_entry_builds_one():
    hparams = _fsdd_yaml("mel_baseline.yaml", cnn_channels=[4])
    del hparams["pipeline"]
    hparams["feature_norm"] = "sentence"
    brain = RelevanceBrain(
        modules=hparams["modules"], hparams=hparams,
        run_opts={"device": "cpu"},
    )
    settings = brain.pipeline.settings()
    assert settings["feature_norm"] == "sentence"
    assert settings["classifier_input"] == "sequence"
    assert brain.pipeline.relevance is None


def test_figures_show_the_normalisation_the_classifier_reads():
    wav = torch.randn(4000)
    minmax = representation_panels(_pipeline("minmax", False), wav, 8000)
    sentence = representation_panels(_pipeline("sentence", False), wav, 8000)
    last = sentence["panels"][-1]["data"]
    # Per-band standardised (what that classifier reads), not min-max.
    assert abs(float(last.mean(axis=0).max())) < 1e-4
    assert last.min() < 0
    assert minmax["panels"][-1]["data"].min() >= 0
    assert "normalised" in sentence["panels"][-1]["title"]


def test_a_missing_hub_file_is_named_first(monkeypatch, tmp_path):
    import speechbrain.utils.parameter_transfer as transfer

    def fetch(filename, source, **kwargs):
        try:
            raise OSError(
                "404 Client Error. Entry Not Found for url: "
                f"https://huggingface.co/{source}/resolve/main/{filename}"
            )
        except OSError as e:
            raise ValueError("Fetching failed") from e

    monkeypatch.setattr(transfer, "fetch", fetch)
    pretrainer = ModelFolderPretrainer(
        collect_in=str(tmp_path),
        loadables={"classifier": torch.nn.Linear(1, 1)},
    )
    with pytest.raises(FileNotFoundError) as info:
        pretrainer.collect_files(default_source="someone/model")
    first = str(info.value).splitlines()[0]
    assert "someone/model" in first and "classifier.ckpt" in first
