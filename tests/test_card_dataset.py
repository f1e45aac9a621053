"""The model card's data set: what each recipe declares, nothing guessed.

Every recipe yaml declares its data in a ``dataset_card`` block; the
exporter copies it into the card (front matter, title, data paragraph,
per-group table). The texts expected here are those of the cards written
before the block existed, when the exporter guessed the data set from the
run's key names, so the project's recipes' cards are unchanged.
"""

import datetime
import glob
import json
import os
import types

import pytest
from hyperpyyaml import resolve_references
from ruamel.yaml import YAML

from speechbrain_relevance.errors import ExportError
from speechbrain_relevance.export import RELEVANCE
from speechbrain_relevance.export.card import (
    declared_dataset,
    describe_dataset,
    front_matter,
    model_card,
)
from speechbrain_relevance.export.hparams import load_yaml, to_plain

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = os.path.join(ROOT, "recipes")


def _yamls(recipe):
    return sorted(glob.glob(os.path.join(RECIPES, recipe, "hparams", "*.yaml")))


FSDD = (
    "Free Spoken Digit Dataset (FSDD; 10 digits, 6 speakers, 8 kHz, "
    "CC BY-SA 4.0), "
)
FSDD_SPEAKER = (
    FSDD + "one fold of leave-one-speaker-out cross-validation: tested on "
    "the unseen speaker `{test}`, validated on {valid} (alphabetical, "
    "cyclic), trained on the other four. The metrics below are for this "
    "test speaker only."
)
US8K = (
    "UrbanSound8K (10 classes, official predefined folds), one round of "
    "the 10-fold cross-validation: test fold {test}, validation folds "
    "{valid}, training folds {train} (default: validation is the fold "
    "before the test fold, training the other eight). The metrics below "
    "are for this test fold only, not the 10-fold mean."
)
DCASE = (
    "DCASE2020 Task 1A development set (TAU Urban Acoustic Scenes 2020 "
    "Mobile, 10 scenes), official fold 1: trained on fold1_train minus the "
    "held-out validation locations ({fraction} of the locations), tested "
    "on fold1_evaluate."
)
AUGMENTED = " Offline audio augmentation of the training split: {methods}."

#: (recipe, overrides, the card's data paragraph before dataset_card).
CASES = [
    ("FSDD", {"test_fold": "theo"},
     FSDD_SPEAKER.format(test="theo", valid="the next speaker")),
    ("FSDD", {"test_fold": "jackson", "valid_speakers": "nicolas"},
     FSDD_SPEAKER.format(test="jackson", valid="nicolas")),
    ("FSDD", {"test_fold": "theo", "split": "official"},
     FSDD + "the dataset's official split: takes 0-4 of every speaker and "
     "digit tested, 5-9 for validation, 10-49 for training."),
    ("UrbanSound8k", {"test_fold": 3},
     US8K.format(test=3, valid="default", train="default")),
    ("UrbanSound8k",
     {"test_fold": 10, "valid_folds": [1, 2], "train_folds": [3, 4, 5]},
     US8K.format(test=10, valid="[1, 2]", train="[3, 4, 5]")),
    ("DCASE2020", {}, DCASE.format(fraction=0.1)),
    ("DCASE2020", {"audio_augmentation": True},
     DCASE.format(fraction=0.1)
     + AUGMENTED.format(methods="mix, pitch, stretch, noise, spectrum")),
    ("DCASE2020",
     {"audio_augmentation": True, "augment_methods": ["pitch", "noise"],
      "valid_locations_fraction": 0.2},
     DCASE.format(fraction=0.2) + AUGMENTED.format(methods="pitch, noise")),
]

#: recipe: (tag and data set id, model-index name, title task, group).
DECLARED = {
    "FSDD": ("fsdd", "Free Spoken Digit Dataset", "spoken digit recognition",
             "Speaker"),
    "UrbanSound8k": ("urbansound8k", "UrbanSound8K",
                     "urban sound classification", "Salience"),
    "DCASE2020": ("dcase2020", "DCASE2020 Task 1A",
                  "acoustic scene classification", "Device"),
}

PARAMS = [
    pytest.param(path, overrides, text,
                 id=f"{os.path.basename(path)[:-5]}-{recipe}-{i}")
    for i, (recipe, overrides, text) in enumerate(CASES)
    for path in _yamls(recipe)
]


def _run_folder(folder, hparams_file, overrides):
    """Write a run folder as a recipe run leaves it; return its run dict.

    ``hyperparams.yaml`` as ``sb.create_experiment_directory`` writes it,
    a ``test_results.json`` with per-group accuracies.
    """
    overrides = {"data_folder": "/data/corpus",
                 "output_folder": os.path.join(folder, "out"), **overrides}
    with open(hparams_file, encoding="utf-8") as fin:
        resolved = resolve_references(fin, overrides).getvalue()
    with open(os.path.join(folder, "hyperparams.yaml"), "w") as fout:
        fout.write(f"# Generated {datetime.date.today()} from:\n")
        fout.write(f"# {os.path.abspath(hparams_file)}\n")
        fout.write("# yamllint disable\n" + resolved)
    with open(os.path.join(folder, "test_results.json"), "w") as fout:
        json.dump({"n": 4, "accuracy": 0.5,
                   "group_accuracy": {"g1": 0.5}}, fout)
    return to_plain(load_yaml(resolved))


def _card(folder, run):
    checkpoint = types.SimpleNamespace(meta={"acc": 0.5}, path="CKPT+x")
    return model_card(run, str(folder), RELEVANCE, {}, ["a", "b"],
                      checkpoint, "max acc", [])


def _data_paragraph(card):
    return card.split("### Data\n\n", 1)[1].split("\n\n## ", 1)[0].strip()


@pytest.mark.parametrize("hparams_file, overrides, text", PARAMS)
def test_recipe_cards_describe_the_data_as_before(
    hparams_file, overrides, text, tmp_path
):
    run = _run_folder(str(tmp_path), hparams_file, overrides)
    assert describe_dataset(run) == text
    card = _card(tmp_path, run)
    assert _data_paragraph(card) == text
    recipe = os.path.basename(os.path.dirname(os.path.dirname(hparams_file)))
    dataset, name, task, group = DECLARED[recipe]
    front = YAML(typ="safe").load(card.split("---\n")[1])
    assert dataset in front["tags"] and front["datasets"] == [dataset]
    assert front["model-index"][0]["results"][0]["dataset"] == {
        "type": dataset, "name": name, "split": "test",
    }
    assert f"\n# {run['system_name']}: {task}\n" in card
    assert f"| {group} | Accuracy |" in card


def test_a_run_from_before_the_block_takes_its_recipes(tmp_path):
    """A run's hyperparams.yaml without the key: its hparams file's block."""
    hparams_file = _yamls("FSDD")[0]
    run = _run_folder(str(tmp_path), hparams_file, {"test_fold": "theo"})
    declared = run.pop("dataset_card")
    assert declared_dataset(run, str(tmp_path)) == declared
    assert _data_paragraph(_card(tmp_path, run)) == CASES[0][2]
    # The hparams file is gone: nothing declared.
    with open(tmp_path / "hyperparams.yaml", "w") as fout:
        fout.write("# Generated 2024-01-01 from:\n# /gone/h.yaml\n")
    assert declared_dataset(run, str(tmp_path)) is None


def test_a_recipe_that_declares_nothing_gets_no_other_data_set(tmp_path):
    """A new recipe with the project's key names is not taken for theirs."""
    (tmp_path / "hyperparams.yaml").write_text("a: 1\n")
    (tmp_path / "test_results.json").write_text(
        json.dumps({"n": 4, "accuracy": 0.5, "group_accuracy": {"g": 0.5}})
    )
    run = {
        "test_fold": 3, "valid_speakers": None, "split": "official",
        "valid_locations_fraction": 0.1, "data_folder": "/d/UrbanSound8K",
        "system_name": "New", "sample_rate": 16000,
    }
    for declared in ({}, {"dataset_card": {}}, {"dataset_card": None}):
        card = _card(tmp_path, {**run, **declared})
        text = _data_paragraph(card)
        assert text.startswith("The recipe declared no data set")
        assert "(data folder `UrbanSound8K`)" in text
        assert "`dataset_card:`" in text  # how to declare one
        front = YAML(typ="safe").load(card.split("---\n")[1])
        assert "datasets" not in front
        assert front["tags"] == ["speechbrain", "audio-classification"]
        assert front["model-index"][0]["results"][0]["dataset"] == {
            "type": "audio", "name": "the run's test data", "split": "test",
        }
        assert "\n# New: audio classification\n" in card
        assert "| Group | Accuracy |" in card
        for other in ("Free Spoken", "DCASE", "10-fold", "urbansound8k"):
            assert other not in card, other


def test_a_declared_block_without_description_names_the_data():
    run = {"data_folder": "/d/my_sounds",
           "dataset_card": {"id": "me/my-sounds", "name": "My Sounds",
                            "split": "eval"}}
    assert describe_dataset(run) == (
        "My Sounds (`my_sounds`): the train, valid and test manifests of "
        "the recipe's data folder."
    )
    text = front_matter(run, {}, {"accuracy": 0.5, "n": 2})
    front = YAML(typ="safe").load(text.strip("-\n"))
    assert front["datasets"] == ["me/my-sounds"]
    assert front["model-index"][0]["results"][0]["dataset"] == {
        "type": "me/my-sounds", "name": "My Sounds", "split": "eval",
    }


@pytest.mark.parametrize("block, message", [
    ("not a mapping", "must be a mapping"),
    ({"descripton": "x"}, r"unknown keys \['descripton'\]"),
    ({"description": "fold {fold}"}, r"\{fold\}"),
    ({"description": {"a": "x", "b": "y"}}, "a description part"),
])
def test_a_malformed_block_is_refused_naming_it(block, message):
    with pytest.raises(ExportError, match=message):
        describe_dataset({"test_fold": 1, "dataset_card": block})
