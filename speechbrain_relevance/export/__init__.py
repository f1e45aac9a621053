r"""Turn a finished recipe run into a shareable model folder.

One exporter for every recipe run of the project:

* the DCASE2020, UrbanSound8k (one fold's folder) and FSDD recipes
  (``compute_features``, optional ``relevance``, ``classifier``): a folder
  that :class:`speechbrain_relevance.inference.RelevanceClassifier` loads;
* SpeechBrain embedding classifiers with a swapped-in front-end, such as
  ``recipes/other_recipes/train_ecapa.py`` (``compute_features``,
  ``mean_var_norm``, ``embedding_model``, ``classifier``): a folder that
  SpeechBrain's own ``EncoderClassifier`` loads.

A run folder holds the resolved ``hyperparams.yaml`` (saved by
``sb.create_experiment_directory``), checkpoints in ``save/CKPT+*`` and,
when the recipe tested the model, ``test_results.json``.
:func:`export_model` picks a checkpoint (by default the one the recipe
keeps as best: highest validation ``acc`` for the project's recipes,
lowest ``error`` for the ECAPA swap) and writes::

    hyperparams.yaml      inference only: the run's module definitions,
                          copied node by node, labels or label count,
                          sample rate, pretrainer (no training keys, no
                          paths)
    <module>.ckpt         one file per module with a state
    label_encoder.txt     class names (label_encoder.ckpt for
                          EncoderClassifier)
    README.md             model card: license and tags, install line,
                          usage, training command, data, test metrics,
                          citation

Nothing written depends on where the run or the model folder lies: the
pretrainer has no ``paths`` (each ``<name>.ckpt`` is fetched from the
``source`` given to ``from_hparams``), and the card shows paths relative to
``recipes/``. After writing, the folder is loaded back with its interface,
every module must hold exactly its checkpoint's tensors, and one second of
noise is classified (``--no_verify`` skips this).

Command line (``sb-relevance-export`` once installed)::

    python -m speechbrain_relevance.export <run_folder> <model_folder> \
        [--max_key acc | --min_key error | --latest] \
        [--overwrite]

To share the model, upload the folder's files to a HuggingFace model
repository; others then load it with ``from_hparams(source="<user>/<name>")``.
The exported ``hyperparams.yaml`` names Python classes that are run when
it is loaded: only load model folders from sources you trust.

Authors
 * speechbrain-relevance developers
"""

import dataclasses
import glob
import importlib
import logging
import os
import shutil
import tempfile

import torch
from speechbrain.dataio.encoder import CategoricalEncoder

from speechbrain_relevance.checkpoint_files import (
    find_model_checkpoint,
    load_checkpoint_file,
)
from speechbrain_relevance.cli import ArgumentParser, command_name, run_main
from speechbrain_relevance.errors import ExportError
from speechbrain_relevance.export.card import model_card
from speechbrain_relevance.export.hparams import (
    Tagged,
    encoder_hparams,
    load_yaml,
    relevance_hparams,
    to_plain,
)
from speechbrain_relevance.inference import (
    HPARAMS_FILE,
    LABEL_ENCODER_FILE,
)
from speechbrain_relevance.pipeline import MODULE_NAMES

__all__ = [
    "ENCODER",
    "RELEVANCE",
    "ExportError",
    "ExportResult",
    "Target",
    "export_model",
    "main",
    "verify_export",
    "write_label_encoder",
]

logger = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class Target:
    """A kind of model folder, and the runs it is written for.

    Arguments
    ---------
    name : str
        ``relevance`` or ``encoder``.
    interface : str
        ``module.Class`` of the inference interface that loads it.
    modules : tuple of str
        Modules it may hold, in pipeline order.
    required : tuple of str
        Modules the run must define.
    weights_required : tuple of str or None
        Modules that must have a checkpoint file (None: every module
        present).
    best : tuple of str
        ``("max", key)`` or ``("min", key)``: the checkpoint the recipe
        keeps as best, and tests.
    label_file : str
        Name of the label encoder file in the model folder.
    """

    name: str
    interface: str
    modules: tuple
    required: tuple
    weights_required: tuple
    best: tuple
    label_file: str

    @property
    def test_key_text(self):
        """How the recipe chose the checkpoint it tested, e.g. ``max acc``."""
        return " ".join(self.best)


#: Runs of recipes on the project's Brain and pipeline.
RELEVANCE = Target(
    name="relevance",
    interface="speechbrain_relevance.inference.RelevanceClassifier",
    modules=MODULE_NAMES,
    required=("compute_features", "classifier"),
    weights_required=None,
    best=("max", "acc"),
    label_file=LABEL_ENCODER_FILE,
)

#: SpeechBrain embedding classifiers (the ECAPA-TDNN swap).
ENCODER = Target(
    name="encoder",
    interface="speechbrain.inference.classifiers.EncoderClassifier",
    modules=("compute_features", "mean_var_norm", "embedding_model",
             "classifier"),
    required=("compute_features", "mean_var_norm", "embedding_model",
              "classifier"),
    # Fbank and a sentence-level InputNormalization have no weights, and
    # SpeechBrain's recipes do not checkpoint them; verification refuses
    # a module that has weights but no checkpoint.
    weights_required=("embedding_model", "classifier"),
    best=("min", "error"),
    label_file="label_encoder.ckpt",
)


@dataclasses.dataclass
class ExportResult:
    """What :func:`export_model` wrote.

    Arguments
    ---------
    model_folder : str
        The model folder (absolute).
    checkpoint : str
        The exported checkpoint folder.
    target : Target
        The kind of model folder.
    files : dict
        File name in the model folder to the run's file it was copied
        from (None for generated files).
    """

    model_folder: str
    checkpoint: str
    target: Target
    files: dict


def write_label_encoder(labels, path):
    """Write ``labels`` (in index order) as a CategoricalEncoder file.

    Arguments
    ---------
    labels : list of str
        Class names, index order.
    path : str
        Output file.

    Example
    -------
    >>> path = os.path.join(tempfile.mkdtemp(), "label_encoder.txt")
    >>> write_label_encoder(["park", "bus"], path)
    >>> enc = CategoricalEncoder()
    >>> enc.load(path)
    >>> enc.decode_ndim([1, 0])
    ['bus', 'park']
    """
    encoder = CategoricalEncoder()
    for label in labels:
        encoder.add_label(label)
    encoder.expect_len(len(labels))
    encoder.save(path)


def _check_run_folder(run_folder):
    """Fail clearly if ``run_folder`` is not one recipe run."""
    if not os.path.isdir(run_folder):
        raise FileNotFoundError(f"No such run folder: {run_folder}")
    if os.path.isfile(os.path.join(run_folder, HPARAMS_FILE)):
        return
    folds = sorted(
        os.path.basename(os.path.dirname(p))
        for p in glob.glob(os.path.join(run_folder, "*", HPARAMS_FILE))
        if os.path.isdir(os.path.join(os.path.dirname(p), "save"))
    )
    hint = (
        f" It holds the runs {', '.join(folds)}: export one of them "
        f"(e.g. {os.path.join(run_folder, folds[0])})."
        if folds
        else ""
    )
    raise FileNotFoundError(
        f"{run_folder} is not a recipe run folder (no {HPARAMS_FILE}).{hint}"
    )


def _resolve_run_path(path, run_folder, output_folder, default):
    """Find a file or folder the run's yaml names, in the run folder given.

    The saved paths are as the training yaml wrote them, often relative to
    the directory training ran from (``results/...``), and the run folder
    may have moved since. Tried in order: the path as written (if it is
    inside the run folder), the path re-rooted from the run's
    ``output_folder`` to ``run_folder``, then ``default`` inside
    ``run_folder`` (the recipes' layout). The first that exists wins.
    """
    candidates = []
    if path is not None:
        path = os.path.normpath(str(path))
        if os.path.isabs(path) and path.startswith(run_folder + os.sep):
            candidates.append(path)
        if output_folder is not None:
            rel = os.path.relpath(path, os.path.normpath(str(output_folder)))
            if not rel.startswith(os.pardir):
                candidates.append(os.path.join(run_folder, rel))
        if not os.path.isabs(path):
            candidates.append(os.path.join(run_folder, path))
    # Per-fold runs (FSDD, UrbanSound8k) keep output_folder at the
    # cross-validation root: the recipes' own layout then applies.
    candidates.append(os.path.join(run_folder, default))
    return next((c for c in candidates if os.path.exists(c)), candidates[0])


def _find_recoverable(tree, node, key):
    """Name under which the run's checkpointer saved ``node``, or None.

    The resolved yaml keeps references as aliases, so the recoverable is
    the very same node object; matching by identity also finds modules
    saved under another name (SpeechBrain's recipes save
    ``mean_var_norm`` as ``normalizer``).
    """
    checkpointer = tree.get("checkpointer")
    recoverables = {}
    if isinstance(checkpointer, dict):
        recoverables = checkpointer.get("recoverables") or {}
    for name, value in recoverables.items():
        if value is node:
            return str(name)
    return key


def _choose_target(tree, hparams_path):
    """Tell which kind of model folder a run becomes, from its modules."""
    modules = tree.get("modules")
    if not isinstance(modules, dict) or not modules:
        raise ExportError(
            f"{hparams_path} has no 'modules': not a SpeechBrain recipe run"
        )
    names = [str(k) for k in modules]
    target = ENCODER if "embedding_model" in names else RELEVANCE
    unknown = [n for n in names if n not in target.modules]
    if unknown:
        raise ExportError(
            f"Unknown recipe run: {hparams_path} has the modules {names}. "
            "The exporter knows the project's recipes (compute_features, "
            "[relevance,] classifier) and SpeechBrain embedding "
            "classifiers (compute_features, mean_var_norm, "
            f"embedding_model, classifier); {unknown} would be lost"
        )
    nodes = {}
    for key in target.modules:
        node = modules.get(key)
        if node is None and target is ENCODER:
            # EncoderClassifier calls mean_var_norm even where the recipe
            # keeps it out of its modules.
            node = tree.get(key)
        if node is not None:
            nodes[key] = node
    missing = [k for k in target.required if k not in nodes]
    if missing:
        raise ExportError(
            f"{hparams_path} defines no {missing}, which "
            f"{target.interface.rsplit('.', 1)[-1]} needs"
        )
    for key, node in nodes.items():
        if not isinstance(to_plain(node), Tagged):
            raise ExportError(f"Module {key!r} is not an object definition")
    return target, nodes


def _header(run, target, run_folder, ckpt, key_text):
    """First comment lines of the inference yaml."""
    name = (
        run.get("system_name")
        or run.get("experiment_name")
        or "speechbrain-relevance model"
    )
    cls = target.interface.rsplit(".", 1)[-1]
    averaged = ckpt.meta.get("averaged_epochs")
    how = f"the average of epochs {averaged}" if averaged else key_text
    return (
        f"Inference hyperparameters: {name}\n"
        f"Exported from run {os.path.basename(run_folder)}, checkpoint "
        f"{os.path.basename(str(ckpt.path))} ({how})\n"
        f"Load: {cls}.from_hparams(source=<this folder or hub id>)\n"
        f"      ({target.interface.rsplit('.', 1)[0]})\n"
        "WARNING: loading this file runs the Python objects it names; only\n"
        "load model folders from sources you trust."
    )


def _local_paths(run, run_folder):
    """Absolute paths of the machine the run used, that no file may name."""
    paths = {run_folder, os.path.realpath(run_folder)}
    for key in ("output_folder", "save_folder", "data_folder"):
        value = run.get(key)
        if isinstance(value, str) and os.path.isabs(value):
            paths.add(os.path.normpath(value))
    return sorted(p for p in paths if len(p) > 1)


def _check_portable(texts, run, run_folder):
    """Refuse to write a run's local path into the model folder.

    A path in ``hyperparams.yaml`` would make the model load only here;
    in the card it would reveal a local folder.
    """
    for name, text in texts.items():
        for path in _local_paths(run, run_folder):
            if path in text:
                line = next(ln for ln in text.splitlines() if path in ln)
                raise ExportError(
                    f"{name} would name the local path {path} "
                    f"({line.strip()!r}): the run's definitions must not "
                    "depend on its folders"
                )


def _pick_checkpoint(run, run_folder, target, max_key, min_key, latest):
    """Find the checkpoint to export and say how it was chosen."""
    save_folder = _resolve_run_path(
        run.get("save_folder"), run_folder, run.get("output_folder"), "save"
    )
    if latest:
        max_key = min_key = None
    elif max_key is None and min_key is None:
        direction, key = target.best
        max_key, min_key = (key, None) if direction == "max" else (None, key)
    ckpt = find_model_checkpoint(
        save_folder, max_key=max_key, min_key=min_key, latest=latest
    )
    if latest:
        key_text = "latest"
    else:
        key_text = f"min {min_key}" if min_key else f"max {max_key}"
    return ckpt, key_text, save_folder


def unfinished_reason(run, save_folder, ckpt):
    """Say why a run's checkpoint is not what the finished run tests.

    A run killed before it finished left one epoch's weights: when the
    run averages its last epochs (``average_checkpoints`` > 1), the
    average is made at the end; and its last checkpoint is of an epoch
    before ``number_of_epochs``.

    Arguments
    ---------
    run : dict
        The run's hyperparameters (plain values).
    save_folder : str
        Its checkpoint folder.
    ckpt : speechbrain.utils.checkpoints.Checkpoint
        The checkpoint chosen for export.

    Returns
    -------
    str or None
        The reason, or None if the run finished.

    Example
    -------
    >>> from types import SimpleNamespace
    >>> ckpt = SimpleNamespace(meta={"epoch": 3})
    >>> unfinished_reason({"average_checkpoints": 4}, "/nonexistent", ckpt)
    'it averages its last 4 epochs when it finishes, and the checkpoint \
holds one epoch (3), not their average'
    """
    k = run.get("average_checkpoints")
    averaged = "averaged_epochs" in ckpt.meta
    if isinstance(k, int) and not isinstance(k, bool) and k > 1 and (
        not averaged
    ):
        epoch = ckpt.meta.get("epoch")
        which = f" ({epoch})" if epoch is not None else ""
        return (
            f"it averages its last {k} epochs when it finishes, and the "
            f"checkpoint holds one epoch{which}, not their average"
        )
    epochs = run.get("number_of_epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        return None
    try:
        latest = find_model_checkpoint(save_folder, latest=True)
    except FileNotFoundError:
        return None
    last = (latest.meta if latest is not None else {}).get("epoch")
    if isinstance(last, int) and last < epochs:
        return (
            f"its last checkpoint is of epoch {last} of its "
            f"number_of_epochs={epochs}"
        )
    return None


def _checkpoint_files(tree, nodes, target, ckpt):
    """Map ``<module>.ckpt`` to the checkpoint's file of each module."""
    required = target.weights_required or tuple(nodes)
    files = {}
    for key, node in nodes.items():
        name = _find_recoverable(tree, node, key)
        path = os.path.join(str(ckpt.path), f"{name}.ckpt")
        if os.path.isfile(path):
            # Fail here, not on the user's side, if a file is not plain
            # tensors.
            load_checkpoint_file(path)
            files[f"{key}.ckpt"] = path
        elif key in required:
            raise FileNotFoundError(f"Checkpoint {ckpt.path} lacks {name}.ckpt")
    return files


def _run_labels(run, hparams_path):
    """Return the class names of a project recipe's run, in index order."""
    if "labels" not in run:
        raise ExportError(f"{hparams_path} has no 'labels'")
    return [str(label) for label in run["labels"]]


def _run_pipeline(tree, hparams_path):
    """Return the run's ``pipeline`` node: what the exported model runs."""
    node = tree.get("pipeline")
    if node is None:
        raise ExportError(
            f"{hparams_path} has no 'pipeline': the exported model would "
            "have to guess how its classifier reads the representation and "
            "how clips are prepared. Runs of the project's recipes define "
            "it (speechbrain_relevance.pipeline.ClassificationPipeline "
            "with its ClipPolicy); add the recipe's pipeline and "
            "clip_policy entries to this file to export an older run"
        )
    return node


def _encoder_labels(run, run_folder, save_folder):
    """Read the labels and label file of an ``EncoderClassifier`` run."""
    label_file = _resolve_run_path(
        run.get("label_encoder_file"),
        run_folder,
        run.get("output_folder"),
        os.path.join(os.path.relpath(save_folder, run_folder),
                     "label_encoder.txt"),
    )
    if not os.path.isfile(label_file):
        raise FileNotFoundError(f"Label encoder file {label_file} not found")
    encoder = CategoricalEncoder()
    encoder.load(label_file)
    return [str(encoder.ind2lab[i]) for i in range(len(encoder))], label_file


def _relevance_yaml(tree, run, nodes, header, hparams_path):
    """Write a project run's inference yaml; return it and its pipeline."""
    run_pipeline = _run_pipeline(tree, hparams_path)
    try:
        text = relevance_hparams(run, nodes, run_pipeline, header)
    except ValueError as e:
        raise ExportError(f"{hparams_path}: {e}") from e
    settings = to_plain(run_pipeline).value
    settings["clip_policy"] = getattr(
        settings.get("clip_policy"), "value", None
    )
    return text, settings


def _write_folder(model_folder, files, texts, target, labels):
    """Copy the checkpoints and write the texts (and label file)."""
    os.makedirs(model_folder, exist_ok=True)
    for name, source in files.items():
        shutil.copyfile(source, os.path.join(model_folder, name))
    if target is RELEVANCE:
        write_label_encoder(
            labels, os.path.join(model_folder, target.label_file)
        )
        files[target.label_file] = None
    for name, text in texts.items():
        with open(
            os.path.join(model_folder, name), "w", encoding="utf-8"
        ) as fout:
            fout.write(text)
        files[name] = None


def export_model(
    run_folder,
    model_folder,
    max_key=None,
    min_key=None,
    latest=False,
    overwrite=False,
    verify=True,
    allow_unfinished=False,
):
    """Export a finished recipe run as a model folder.

    A project recipe's run is exported with its own ``pipeline``
    (classifier input, normalisation, patches, clip policy): nothing is
    re-derived or defaulted, so the exported model prepares and
    classifies clips exactly as the run's test stage did.

    Arguments
    ---------
    run_folder : str
        The run's output folder (UrbanSound8k: one fold's folder).
    model_folder : str
        Folder to write; must not exist or be empty (unless
        ``overwrite``).
    max_key : str, optional
        Checkpoint meta key to maximise.
    min_key : str, optional
        Checkpoint meta key to minimise instead. Without either key (and
        without ``latest``), the checkpoint the recipe keeps as best:
        ``max acc`` for the project's recipes, ``min error`` for the ECAPA
        swap.
    latest : bool
        Export the latest checkpoint.
    overwrite : bool
        Replace the files of an existing model folder.
    verify : bool
        Load the folder back and check it (:func:`verify_export`).
    allow_unfinished : bool
        Export a run that has not finished (:func:`unfinished_reason`):
        its checkpoint is not what the finished run would test.

    Returns
    -------
    ExportResult
        The model folder, the exported checkpoint, the files written.

    Raises
    ------
    FileNotFoundError
        The run folder, its checkpoints or a checkpoint file is missing.
    FileExistsError
        The model folder is not empty (and not ``overwrite``).
    ExportError
        The run is of an unknown kind, something it needs is missing, or
        it has not finished (and not ``allow_unfinished``).
    """
    run_folder = os.path.abspath(run_folder)
    model_folder = os.path.abspath(model_folder)
    _check_run_folder(run_folder)
    if os.path.isdir(model_folder) and os.listdir(model_folder):
        if not overwrite:
            raise FileExistsError(
                f"{model_folder} exists and is not empty (use --overwrite)"
            )
    hparams_path = os.path.join(run_folder, HPARAMS_FILE)
    with open(hparams_path, encoding="utf-8") as fin:
        tree = load_yaml(fin)
    run = to_plain(tree)
    target, nodes = _choose_target(tree, hparams_path)
    if "sample_rate" not in run:
        raise ExportError(f"{hparams_path} has no 'sample_rate'")
    ckpt, key_text, save_folder = _pick_checkpoint(
        run, run_folder, target, max_key, min_key, latest
    )
    unfinished = unfinished_reason(run, save_folder, ckpt)
    if unfinished and not allow_unfinished:
        raise ExportError(
            f"{run_folder} has not finished: {unfinished}. Finish the run "
            "(its command run again resumes it), or give "
            "--allow_unfinished to export this checkpoint anyway"
        )
    if unfinished:
        logger.warning("Exporting an unfinished run: %s", unfinished)
    files = _checkpoint_files(tree, nodes, target, ckpt)
    header = _header(run, target, run_folder, ckpt, key_text)
    ckpt_keys = [key for key in nodes if f"{key}.ckpt" in files]
    pipeline = None
    if target is RELEVANCE:
        labels = _run_labels(run, hparams_path)
        yaml_text, pipeline = _relevance_yaml(
            tree, run, nodes, header, hparams_path
        )
    else:
        labels, label_file = _encoder_labels(
            run, run_folder, save_folder
        )
        files[target.label_file] = label_file
        yaml_text = encoder_hparams(
            nodes, run["sample_rate"], [*ckpt_keys, "label_encoder"],
            len(labels), header,
        )
    card = model_card(
        run,
        run_folder,
        target,
        {key: to_plain(node) for key, node in nodes.items()},
        labels,
        ckpt,
        key_text,
        ckpt_keys,
        pipeline=pipeline,
    )
    texts = {HPARAMS_FILE: yaml_text, "README.md": card}
    _check_portable(texts, run, run_folder)

    _write_folder(model_folder, files, texts, target, labels)
    if verify:
        verify_export(model_folder)
    # Debug: the command line prints the one "Exported" line itself.
    logger.debug("Exported %s to %s", ckpt.path, model_folder)
    return ExportResult(model_folder, str(ckpt.path), target, files)


def verify_export(model_folder, savedir=None):
    """Load a model folder with its interface and check its weights.

    Every module with parameters must be among the pretrainer's
    loadables, and every loaded module must then hold exactly the tensors
    of its ``<key>.ckpt`` (parameters and buffers). This catches what
    SpeechBrain only logs as a warning (mismatched keys) or does not
    report at all (a file that was never fetched). Then one second of
    noise is classified, which must give finite posteriors.

    Arguments
    ---------
    model_folder : str
        The exported folder.
    savedir : str, optional
        Scratch folder for the pretrainer's links (default: a temporary
        folder, removed afterwards).

    Returns
    -------
    speechbrain.inference.interfaces.Pretrained
        The loaded model (``RelevanceClassifier`` or
        ``EncoderClassifier``).

    Raises
    ------
    ExportError
        If a module did not load its checkpoint, or the outputs are not
        finite.
    """
    model_folder = os.path.abspath(model_folder)
    with open(os.path.join(model_folder, HPARAMS_FILE), encoding="utf-8") as f:
        exported = to_plain(load_yaml(f))
    target = ENCODER if "embedding_model" in (
        exported.get("modules") or {}) else RELEVANCE
    module_name, cls_name = target.interface.rsplit(".", 1)
    interface = getattr(importlib.import_module(module_name), cls_name)
    with tempfile.TemporaryDirectory() as tmp:
        model = interface.from_hparams(
            source=model_folder,
            savedir=savedir or tmp,
            run_opts={"device": "cpu"},
        )
        loadables = model.hparams.pretrainer.loadables
        for key, module in model.mods.items():
            _check_loaded(model_folder, key, module, key in loadables)
        gen = torch.Generator().manual_seed(0)
        wav = 0.1 * torch.randn(1, int(model.hparams.sample_rate),
                                generator=gen)
        out_prob = model.classify_batch(wav)[0]
    if not torch.isfinite(out_prob).all():
        raise ExportError(f"{model_folder} gives non-finite outputs")
    return model


def _check_loaded(model_folder, key, module, is_loadable):
    """Check that ``module`` holds exactly the tensors of ``<key>.ckpt``."""
    path = os.path.join(model_folder, f"{key}.ckpt")
    if not is_loadable or not os.path.isfile(path):
        # Constant buffers (Fbank's delta kernel) need no checkpoint;
        # parameters do.
        if any(True for _ in module.parameters()):
            raise ExportError(
                f"{key!r} has weights but the run did not checkpoint it: "
                "add it to the checkpointer's recoverables"
            )
        return
    state = module.state_dict()
    if not state:
        return
    saved = load_checkpoint_file(path)
    if set(saved) != set(state):
        raise ExportError(
            f"{path} does not match the {key!r} the yaml builds: missing "
            f"{sorted(set(state) - set(saved))}, unexpected "
            f"{sorted(set(saved) - set(state))}"
        )
    for name, value in state.items():
        if not torch.equal(value.cpu(), saved[name]):
            raise ExportError(f"{key}.{name} did not load from {path}")


def _parser():
    parser = ArgumentParser(
        prog=command_name("sb-relevance-export", __name__),
        description="Export a finished recipe run (any recipe on the "
        "project's Brain, or a SpeechBrain embedding classifier such as "
        "the ECAPA swap) as a model folder: hyperparams.yaml, checkpoints, "
        "label encoder, README.md model card.",
    )
    parser.add_argument(
        "run_folder",
        help="the run's output folder (cross-validation: one fold's "
        "folder)",
    )
    parser.add_argument("model_folder", help="folder to write")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--max_key",
        default=None,
        help="export the checkpoint with the highest value of this meta "
        "key (default: the recipe's best, max acc or min error)",
    )
    which.add_argument(
        "--min_key",
        default=None,
        help="export the checkpoint with the lowest value of this meta key",
    )
    which.add_argument(
        "--latest", action="store_true", help="export the latest checkpoint"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of an existing model folder",
    )
    parser.add_argument(
        "--allow_unfinished",
        action="store_true",
        help="export a run that has not finished (killed before its last "
        "epoch, or before its last epochs were averaged)",
    )
    parser.add_argument(
        "--no_verify",
        action="store_true",
        help="do not load the exported folder back as a check",
    )
    return parser


def _main(argv):
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = export_model(
        args.run_folder,
        args.model_folder,
        max_key=args.max_key,
        min_key=args.min_key,
        latest=args.latest,
        overwrite=args.overwrite,
        verify=not args.no_verify,
        allow_unfinished=args.allow_unfinished,
    )
    print(f"Exported {result.checkpoint} to {result.model_folder}")


def main(argv=None):
    """Command line entry point (``sb-relevance-export``).

    Bad input (a missing run folder, a run without checkpoints, a run of
    an unknown kind, a non-empty model folder) ends with one line on
    stderr and exit status 1.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success.

    Example
    -------
    >>> import contextlib, sys
    >>> try:
    ...     with contextlib.redirect_stderr(sys.stdout):
    ...         main(["/nonexistent/run", "/tmp/model"])
    ... except SystemExit as e:
    ...     print("exit", e.code)
    python -m speechbrain_relevance.export: error: No such run folder: ...
    exit 1
    """
    return run_main(
        _main,
        argv,
        user_errors=(FileExistsError,),
        prog=command_name("sb-relevance-export", __name__),
    )
