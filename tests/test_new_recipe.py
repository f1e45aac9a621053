"""A new recipe needs no change to the package.

A minimal recipe folder, written here as a user would write it: its own
yaml (a small Cos-Gauss + 2-head relevance + compact CNN model, the
pipeline, a ``dataset_card`` block) and a ``train.py`` of a few lines on
the project's Brain, over manifests of its own data. It trains, exports
with the project's exporter, gets a model card that describes its data
set (not another recipe's), and the exported model classifies the test
clips exactly as the run's test stage scored them.
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import soundfile as sf
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_RATE = 8000

TRAIN_PY = '''\
import os
import sys

import speechbrain as sb

from speechbrain_relevance.cli import run_main
from speechbrain_relevance.data.manifests import build_datasets
from speechbrain_relevance.pipeline import clip_policy_of
from speechbrain_relevance.training.brain import (
    RelevanceBrain,
    fit_and_test,
    load_recipe,
)


def main(argv):
    hparams_file, run_opts, overrides, hparams = load_recipe(argv)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    manifests = {
        split: os.path.join(hparams["data_folder"], f"{split}.json")
        for split in ("train", "valid", "test")
    }
    load_clip = clip_policy_of(hparams).load
    datasets = build_datasets(
        manifests, load_clip, "label", hparams["labels"], "source"
    )
    return fit_and_test(RelevanceBrain, hparams, run_opts, datasets)


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
'''

HPARAMS = '''\
seed: 3
__set_seed: !apply:speechbrain.utils.seed_everything [!ref <seed>]
output_folder: !PLACEHOLDER
save_folder: !ref <output_folder>/save
data_folder: !PLACEHOLDER
sample_rate: 8000

dataset_card:
    id: example/whistles
    name: Whistles
    task: whistle pitch classification
    group: Source
    description: >-
        Whistles (two pitches, {sample_rate} Hz), tested on the held-out
        recordings.

labels: [low, high]
number_of_epochs: 3
lr: 0.01
n_bands: 8

train_dataloader_opts:
    batch_size: 4
    shuffle: True
valid_dataloader_opts:
    batch_size: 4

compute_features: !new:speechbrain_relevance.lobes.CosGaussFilterbank
    n_filters: !ref <n_bands>
    sample_rate: !ref <sample_rate>
    win_length: 200
    hop_length: 80
    kernel_size: 129
relevance: !new:speechbrain_relevance.lobes.MultiHeadRelevance
    n_bands: !ref <n_bands>
    n_heads: 2
    context: 2
classifier: !new:speechbrain_relevance.models.CompactCNN
    n_bands: !ref <n_bands>
    n_classes: 2
    channels: [4]
clip_policy: !new:speechbrain_relevance.pipeline.ClipPolicy
    sample_rate: !ref <sample_rate>
    max_duration: 0.5
pipeline: !new:speechbrain_relevance.pipeline.ClassificationPipeline
    compute_features: !ref <compute_features>
    relevance: !ref <relevance>
    classifier: !ref <classifier>
    clip_policy: !ref <clip_policy>
modules:
    compute_features: !ref <compute_features>
    relevance: !ref <relevance>
    classifier: !ref <classifier>

opt_class: !name:torch.optim.Adam
    lr: !ref <lr>
epoch_counter: !new:speechbrain.utils.epoch_loop.EpochCounter
    limit: !ref <number_of_epochs>
checkpointer: !new:speechbrain_relevance.training.AtomicCheckpointer
    checkpoints_dir: !ref <save_folder>
    recoverables:
        compute_features: !ref <compute_features>
        relevance: !ref <relevance>
        classifier: !ref <classifier>
        counter: !ref <epoch_counter>
train_logger: !new:speechbrain.utils.train_logger.FileTrainLogger
    save_file: !ref <output_folder>/train_log.txt
'''


def _whistles(folder):
    """Two pitches, three sources; the manifests of each split."""
    gen = torch.Generator().manual_seed(0)
    splits = {"train": ["s1", "s2"], "valid": ["s3"], "test": ["s3"]}
    for split, sources in splits.items():
        entries = {}
        for source in sources:
            for label, hz in (("low", 500.0), ("high", 2000.0)):
                for k in range(4 if split == "train" else 2):
                    n = int(SAMPLE_RATE * (0.3 + 0.05 * k))
                    t = torch.arange(n) / SAMPLE_RATE
                    wav = torch.sin(2 * math.pi * (hz + 40 * k) * t)
                    wav = 0.5 * wav + 0.05 * torch.randn(n, generator=gen)
                    uid = f"{split}-{source}-{label}-{k}"
                    path = os.path.join(folder, f"{uid}.wav")
                    sf.write(path, wav.numpy(), SAMPLE_RATE)
                    entries[uid] = {"wav": path, "label": label,
                                    "source": source,
                                    "duration": n / SAMPLE_RATE}
        with open(os.path.join(folder, f"{split}.json"), "w") as f:
            json.dump(entries, f)
    return folder


def _run(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("new_recipe")
    recipe = root / "recipes" / "Whistles"
    (recipe / "hparams").mkdir(parents=True)
    (recipe / "train.py").write_text(TRAIN_PY)
    (recipe / "hparams" / "whistles.yaml").write_text(HPARAMS)
    data = root / "data"
    data.mkdir()
    _whistles(str(data))
    run = root / "run"
    _run(["train.py", "hparams/whistles.yaml", f"--data_folder={data}",
          f"--output_folder={run}", "--noprogressbar", "--device=cpu"],
         cwd=str(recipe))
    model = root / "model"
    _run(["-m", "speechbrain_relevance.export", str(run), str(model)],
         cwd=str(root))
    return run, model, data


def test_the_train_py_is_a_few_lines():
    code = [line for line in TRAIN_PY.splitlines()
            if line.strip() and not line.startswith(("import", "from"))]
    assert len(code) <= 30


def test_the_card_describes_the_recipes_own_data(exported):
    _, model, _ = exported
    card = (model / "README.md").read_text()
    front = card.split("---")[1]
    assert "example/whistles" in front
    assert "Whistles (two pitches, 8000 Hz), tested on the held-out" in card
    assert "whistle pitch classification" in card
    # No other recipe's data set leaks in.
    for other in ("UrbanSound", "FSDD", "Free Spoken Digit", "DCASE", "TAU"):
        assert other not in card, other


def test_the_exported_model_scores_the_test_clips_as_the_run(exported):
    from speechbrain_relevance.inference import RelevanceClassifier

    run, model, data = exported
    results = json.loads((run / "test_results.json").read_text())
    classifier = RelevanceClassifier.from_hparams(
        source=str(model), savedir=str(model)
    )
    with open(data / "test.json") as f:
        test = json.load(f)
    labels = list(classifier.labels)
    assert labels == ["low", "high"]
    nll, correct = [], 0
    for entry in test.values():
        out_prob, _, index, _ = classifier.classify_file(entry["wav"])
        target = labels.index(entry["label"])
        nll.append(-float(out_prob[0, target]))
        correct += int(index[0]) == target
    assert results["n"] == len(test)
    assert correct / len(test) == pytest.approx(results["accuracy"])
    assert sum(nll) / len(nll) == pytest.approx(results["log_loss"], abs=1e-5)
    assert results["group_by"] == "source"


def test_the_run_learned(exported):
    # Whistles at two pitches are easy: three epochs separate them.
    run, _, _ = exported
    results = json.loads((run / "test_results.json").read_text())
    assert results["accuracy"] >= 0.75, textwrap.shorten(
        json.dumps(results), 300)
