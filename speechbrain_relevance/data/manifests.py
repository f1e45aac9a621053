"""Classification datasets from the recipes' JSON manifests.

Every recipe's data preparation writes ``train``/``valid``/``test`` JSON
manifests (clip id to ``wav`` path and metadata). :func:`build_datasets`
turns them into SpeechBrain ``DynamicItemDataset`` objects that provide
``id``, ``sig``, ``label`` (class index tensor) and ``group`` (the column
class-wise reports are broken down by), checking first what would
otherwise fail later and less clearly:

* a missing, unreadable or empty manifest stops with an error naming the
  file (SpeechBrain's dataset raises a bare ``IndexError`` on an empty
  one), with a recipe-specific hint;
* a clip whose audio turns out to be unusable when it is read (NaN
  samples, a truncated file) raises :class:`AudioFileError` naming it.

Authors
 * speechbrain-relevance developers
"""

import json
import os

import speechbrain as sb
import torch

from speechbrain_relevance.errors import AudioFileError, ManifestError

__all__ = [
    "ManifestError",
    "build_datasets",
    "read_manifest",
]


def read_manifest(path, split="data", hint=""):
    """Read a JSON manifest; refuse a missing, broken or empty one.

    Arguments
    ---------
    path : str
        The manifest.
    split : str
        Its split's name, for the message.
    hint : str
        Appended to the message of an empty manifest (how to fix it).

    Returns
    -------
    dict
        Clip id to entry.

    Raises
    ------
    ManifestError
        Naming the file and what is wrong with it.

    Example
    -------
    >>> import json, tempfile
    >>> path = tempfile.mkstemp(suffix=".json")[1]
    >>> _ = open(path, "w").write("{}")
    >>> read_manifest(path, "valid", hint="Use more data.")
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ManifestError: The valid split \
is empty (...json). Use more data.
    """
    if not os.path.isfile(path):
        raise ManifestError(f"The {split} manifest {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ManifestError(
            f"The {split} manifest {path} is unreadable ({e}); delete it "
            "to have the data preparation write it again"
        ) from e
    if not isinstance(data, dict):
        raise ManifestError(
            f"The {split} manifest {path} is not a JSON object of clips"
        )
    if not data:
        raise ManifestError(
            f"The {split} split is empty ({path}). {hint}".rstrip()
        )
    return data


def _checked_audio(load):
    """Wrap a clip loader so that its errors name the clip's file."""

    def audio_pipeline(wav):
        try:
            sig = load(wav)
        except AudioFileError:
            raise
        except (OSError, RuntimeError, ValueError) as e:
            raise AudioFileError(wav, f"unusable audio ({e})") from e
        if not torch.isfinite(sig).all():
            raise AudioFileError(wav, "audio holds NaN or infinite samples")
        return sig

    return audio_pipeline


#: The items every dataset of :func:`build_datasets` provides.
_PROVIDED = ("sig", "label", "group")


def build_datasets(
    manifests,
    load_clip,
    label_key,
    labels,
    group_key,
    group_name=str,
    empty_hints=None,
):
    """Build the datasets of a classification recipe from its manifests.

    Arguments
    ---------
    manifests : dict
        Split name to manifest path.
    load_clip : callable
        ``load_clip(wav_path) -> [time]`` tensor (the recipe's reading,
        resampling, normalisation, cropping or padding).
    label_key : str
        Manifest field holding the class name.
    labels : list of str
        Class names in index order.
    group_key : str
        Manifest field the reports are broken down by.
    group_name : callable
        Maps the ``group_key`` value to the group's name.
    empty_hints : dict, optional
        Split name to advice printed if that split is empty.

    Returns
    -------
    dict
        Split name to ``DynamicItemDataset`` providing ``id``, ``sig``,
        ``label`` and ``group``.

    Example
    -------
    >>> import json, tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "train.json")
    >>> with open(path, "w") as f:
    ...     json.dump({"a": {"wav": "a.wav", "digit": 3, "spk": "x"}}, f)
    >>> data = build_datasets(
    ...     {"train": path}, lambda wav: torch.zeros(8), "digit",
    ...     ["0", "1", "2", "3"], "spk",
    ... )
    >>> item = data["train"][0]
    >>> item["id"], item["label"], item["group"]
    ('a', tensor([3]), 'x')
    >>> data["train"].group_key
    'spk'

    A manifest field may be named like an item (``label``):

    >>> with open(path, "w") as f:
    ...     json.dump({"a": {"wav": "a.wav", "label": "1", "group": "y"}}, f)
    >>> item = build_datasets(
    ...     {"train": path}, lambda wav: torch.zeros(8), "label",
    ...     ["0", "1"], "group")["train"][0]
    >>> item["label"], item["group"]
    (tensor([1]), 'y')
    """
    labels = [str(label) for label in labels]
    index = {label: i for i, label in enumerate(labels)}
    empty_hints = empty_hints or {}

    def field(key):
        # A manifest field named like an item the datasets provide (a
        # "label" field, the commonest spelling) would shadow that item:
        # it is read under another name.
        return f"manifest_{key}" if key in _PROVIDED else key

    audio_pipeline = sb.utils.data_pipeline.takes("wav")(
        sb.utils.data_pipeline.provides("sig")(_checked_audio(load_clip))
    )

    @sb.utils.data_pipeline.takes(field(label_key))
    @sb.utils.data_pipeline.provides("label")
    def label_pipeline(name):
        if str(name) not in index:
            raise ValueError(
                f"{label_key} {name!r} is not one of the labels {labels}"
            )
        return torch.tensor([index[str(name)]])

    @sb.utils.data_pipeline.takes(field(group_key))
    @sb.utils.data_pipeline.provides("group")
    def group_pipeline(value):
        return group_name(value)

    datasets = {}
    for split, path in manifests.items():
        data = read_manifest(path, split, empty_hints.get(split, ""))
        data = {
            uid: {field(key): value for key, value in entry.items()}
            for uid, entry in data.items()
        }
        datasets[split] = sb.dataio.dataset.DynamicItemDataset(
            data,
            dynamic_items=[audio_pipeline, label_pipeline, group_pipeline],
            output_keys=["id", "sig", "label", "group"],
        )
        # What the groups are (e.g. "speaker"), for the reports' titles.
        datasets[split].group_key = group_key
    return datasets
