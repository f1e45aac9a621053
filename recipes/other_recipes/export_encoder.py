#!/usr/bin/env python3
"""Export a trained classifier run as an ``EncoderClassifier`` model folder.

Turns the output folder of ``train_ecapa.py`` (or of any SpeechBrain
classification recipe that saves ``hyperparams.yaml`` with
``sb.create_experiment_directory`` and checkpoints its modules) into a
folder that loads offline with::

    from speechbrain.inference.classifiers import EncoderClassifier
    model = EncoderClassifier.from_hparams(source="<model folder>",
                                           savedir="<any scratch folder>")

The model folder holds::

    hyperparams.yaml         inference hyperparameters (generated)
    compute_features.ckpt    front-end weights (Cos-Gauss, relevance, ...)
    mean_var_norm.ckpt       input normalisation statistics
    embedding_model.ckpt     embedding model weights
    classifier.ckpt          classifier weights
    label_encoder.ckpt       the label encoder (CategoricalEncoder text)

Why it loads from any current directory: the generated ``pretrainer`` has
``loadables`` but NO ``paths``. SpeechBrain then fetches every loadable
``<name>`` as ``<name>.ckpt`` from the ``source`` folder passed to
``from_hparams``, wherever that folder is. A ``paths:`` entry written as a
bare relative file name would instead resolve against the current
directory and, if no such file is there, silently load nothing. The
folder can be moved or copied as a whole. After writing, the export loads
the folder through ``EncoderClassifier.from_hparams`` and checks that
every module with weights holds exactly the checkpoint's tensors.

The inference ``hyperparams.yaml`` copies the ``compute_features``,
``mean_var_norm``, ``embedding_model`` and ``classifier`` definitions (and
``sample_rate``) from the run's resolved ``hyperparams.yaml``, so whatever
front-end the training yaml used is the one exported; nothing needs
editing twice.

Usage::

    python export_encoder.py <run folder> <model folder> [--min_key error]

Loading a ``hyperparams.yaml`` executes the Python objects it names: only
load model folders from trusted sources.

Authors
 * speechbrain-relevance developers
"""

import argparse
import io
import os
import shutil
import sys
import tempfile

import torch
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from speechbrain.dataio.encoder import CategoricalEncoder

#: The modules ``EncoderClassifier`` needs, in pipeline order.
MODULE_KEYS = ("compute_features", "mean_var_norm", "embedding_model",
               "classifier")

_TEMPLATE = """
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder
# Decoding raises if label_encoder.ckpt does not hold the {n_labels} labels
# the model was trained on (this also silences SpeechBrain's "expect_len
# was never called" warning).
label_count: !apply:speechbrain.dataio.encoder.CategoricalEncoder.expect_len
    - !ref <label_encoder>
    - {n_labels}

# Resamples and downmixes what classify_file reads to the training format.
audio_normalizer: !new:speechbrain.dataio.preprocess.AudioNormalizer
    sample_rate: !ref <sample_rate>

# No "paths:" on purpose: each loadable <name> is then fetched as
# <name>.ckpt from the folder given to from_hparams(source=...), wherever
# that folder is and whatever the current directory.
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
{loadables}
"""


class ExportError(RuntimeError):
    """The run cannot be exported, or the export does not load back."""


def _resolve_run_path(path, run_folder, output_folder):
    """Map a path saved in the run's yaml onto the run folder given here.

    The saved paths are as the training yaml wrote them, often relative to
    the directory training ran from (``results/...``). Paths inside the
    run's ``output_folder`` are re-rooted at ``run_folder``, so the export
    works from any directory and after the run folder has been moved.
    """
    path = str(path)
    if output_folder is not None:
        rel = os.path.relpath(os.path.normpath(path),
                              os.path.normpath(str(output_folder)))
        if not rel.startswith(os.pardir):
            return os.path.join(run_folder, rel)
    if os.path.isabs(path):
        return path
    return os.path.join(run_folder, path)


def _plain_copy(node):
    """Copy a ruamel node without its comments, keeping tags and styles.

    Comments in the training yaml attach to whatever node precedes them
    (for example the commented-out relevance block to ``compute_features``)
    and would end up, misleadingly, in the exported file.
    """
    if isinstance(node, CommentedMap):
        new = CommentedMap((k, _plain_copy(v)) for k, v in node.items())
    elif isinstance(node, CommentedSeq):
        new = CommentedSeq(_plain_copy(v) for v in node)
        if node.fa.flow_style():
            new.fa.set_flow_style()
    else:
        return node
    if node.tag.value:
        new.yaml_set_ctag(node.tag)
    return new


def _find_recoverable(tree, node, key):
    """Name under which the run's checkpointer saved ``node``, or None.

    The resolved yaml keeps references as aliases, so the recoverable is
    the very same node object; matching by identity also finds modules
    saved under another name (SpeechBrain's recipes save
    ``mean_var_norm`` as ``normalizer``).
    """
    checkpointer = tree.get("checkpointer")
    if not isinstance(checkpointer, dict):
        return None
    recoverables = checkpointer.get("recoverables") or {}
    for name, value in recoverables.items():
        if value is node:
            return name
    return key if key in recoverables else None


def _select_checkpoint(save_folder, min_key, max_key):
    """Return the checkpoint folder to export."""
    from speechbrain.utils.checkpoints import Checkpointer

    if not os.path.isdir(save_folder):
        raise ExportError(f"No checkpoint folder {save_folder}")
    checkpointer = Checkpointer(save_folder)
    if min_key is None and max_key is None:
        ckpt = checkpointer.find_checkpoint()
    else:
        # Only checkpoints that recorded the key can be ranked by it.
        key = min_key if min_key is not None else max_key
        ckpt = checkpointer.find_checkpoint(
            min_key=min_key,
            max_key=max_key,
            ckpt_predicate=lambda c: key in c.meta,
        )
    if ckpt is None:
        what = "any" if min_key is None and max_key is None else (
            f"a checkpoint with {min_key or max_key!r} in its meta")
        raise ExportError(f"{save_folder} holds no checkpoint ({what})")
    return str(ckpt.path)


def build_hparams(nodes, sample_rate, loadables, n_labels, header=""):
    """Write the inference ``hyperparams.yaml`` text.

    Arguments
    ---------
    nodes : dict
        Module key to its (resolved) ruamel node from the training yaml.
    sample_rate : int
        Rate the model was trained at.
    loadables : list of str
        Keys the pretrainer loads from ``<key>.ckpt``.
    n_labels : int
        Number of classes in the label encoder.
    header : str
        Comment lines to put first.

    Returns
    -------
    str
        The yaml text.

    Example
    -------
    >>> from ruamel.yaml import YAML
    >>> node = YAML().load("!new:torch.nn.Linear {in_features: 2, "
    ...                    "out_features: 3}")
    >>> text = build_hparams({"classifier": node}, 16000, ["classifier"], 3)
    >>> print(text.split("modules:")[0].strip())
    sample_rate: 16000
    <BLANKLINE>
    classifier: !new:torch.nn.Linear
        in_features: 2
        out_features: 3
    >>> print(text.split("loadables:")[1].strip())
    classifier: !ref <classifier>
    """
    yaml = YAML()
    yaml.indent(mapping=4, sequence=4, offset=4)
    # Lists such as ECAPA's kernel sizes stay on one line; SpeechBrain's
    # yaml files capitalise booleans.
    yaml.representer.add_representer(
        bool,
        lambda rep, value: rep.represent_scalar(
            "tag:yaml.org,2002:bool", "True" if value else "False"
        ),
    )
    parts = [header]
    stream = io.StringIO()
    yaml.dump({"sample_rate": int(sample_rate)}, stream)
    parts.append(stream.getvalue())
    for key, node in nodes.items():
        stream = io.StringIO()
        yaml.dump({key: _plain_copy(node)}, stream)
        parts.append("\n" + stream.getvalue())
    lines = "\n".join(f"        {k}: !ref <{k}>" for k in loadables)
    parts.append(_TEMPLATE.format(loadables=lines, n_labels=int(n_labels)))
    return "".join(parts)


def export_encoder(run_folder, model_folder, min_key="error", max_key=None,
                   verify=True):
    """Export a training run as an ``EncoderClassifier`` model folder.

    Arguments
    ---------
    run_folder : str
        The run's ``output_folder``: holds ``hyperparams.yaml`` (as saved
        by ``sb.create_experiment_directory``) and the checkpoints.
    model_folder : str
        Where to write the model (created; files in it are overwritten).
    min_key : str, optional
        Export the checkpoint with the lowest value of this meta key
        (``train_ecapa.py`` records the validation ``error``). With
        ``min_key`` and ``max_key`` both None, the latest checkpoint.
    max_key : str, optional
        Or the checkpoint with the highest value of this key.
    verify : bool
        Load the folder back with ``EncoderClassifier.from_hparams`` and
        check the weights (see :func:`verify_export`).

    Returns
    -------
    dict
        ``model_folder`` (absolute), ``checkpoint`` (the exported
        checkpoint folder) and ``files`` (loadable key to the checkpoint
        file it was copied from).

    Raises
    ------
    ExportError
        If something needed is missing, or the export does not load back.
    """
    run_folder = os.path.abspath(run_folder)
    model_folder = os.path.abspath(model_folder)
    hparams_path = os.path.join(run_folder, "hyperparams.yaml")
    if not os.path.isfile(hparams_path):
        raise ExportError(
            f"{hparams_path} not found: give the run's output folder "
            "(where sb.create_experiment_directory saved hyperparams.yaml)"
        )
    with open(hparams_path, encoding="utf-8") as f:
        tree = YAML().load(f)

    output_folder = tree.get("output_folder")
    save_folder = _resolve_run_path(
        tree.get("save_folder", "save"), run_folder, output_folder
    )
    ckpt_dir = _select_checkpoint(save_folder, min_key, max_key)

    modules = tree.get("modules") or {}
    nodes, files = {}, {}
    for key in MODULE_KEYS:
        node = modules.get(key, tree.get(key))
        if node is None:
            raise ExportError(
                f"{hparams_path} defines no {key!r}, which EncoderClassifier "
                "needs"
            )
        nodes[key] = node
        name = _find_recoverable(tree, node, key)
        path = os.path.join(ckpt_dir, f"{name}.ckpt") if name else None
        if path is not None and os.path.isfile(path):
            files[key] = path
    for key in ("embedding_model", "classifier"):
        if key not in files:
            raise ExportError(f"{ckpt_dir} holds no checkpoint of {key!r}")

    label_file = _resolve_run_path(
        tree.get("label_encoder_file",
                 os.path.join(save_folder, "label_encoder.txt")),
        run_folder,
        output_folder,
    )
    if not os.path.isfile(label_file):
        raise ExportError(f"Label encoder file {label_file} not found")
    files["label_encoder"] = label_file
    labels = CategoricalEncoder()
    labels.load(label_file)

    header = (
        "# Inference hyperparameters for speechbrain.inference.classifiers."
        "\n# EncoderClassifier, written by export_encoder.py from\n"
        f"# {ckpt_dir}\n"
        "# Load with EncoderClassifier.from_hparams(source=<this folder>).\n"
        "# Loading executes the Python objects named here: trusted sources"
        " only.\n"
    )
    text = build_hparams(
        nodes, tree.get("sample_rate", 16000), list(files), len(labels),
        header,
    )
    os.makedirs(model_folder, exist_ok=True)
    with open(os.path.join(model_folder, "hyperparams.yaml"), "w",
              encoding="utf-8") as f:
        f.write(text)
    for key, src in files.items():
        shutil.copyfile(src, os.path.join(model_folder, f"{key}.ckpt"))

    if verify:
        verify_export(model_folder)
    return {"model_folder": model_folder, "checkpoint": ckpt_dir,
            "files": files}


def verify_export(model_folder, savedir=None):
    """Load a model folder as ``EncoderClassifier`` and check its weights.

    Every module with parameters must be among the pretrainer's
    loadables, and every loaded module must then hold exactly the tensors
    of its ``<key>.ckpt`` (parameters and buffers). This catches what
    SpeechBrain only logs as a warning (mismatched keys) or does not
    report at all (a file that was never fetched). Then runs
    ``classify_batch`` on one second of noise.

    Arguments
    ---------
    model_folder : str
        The exported folder.
    savedir : str, optional
        Scratch folder for the pretrainer's links (default: a temporary
        folder, removed afterwards).

    Returns
    -------
    EncoderClassifier
        The loaded model.

    Raises
    ------
    ExportError
        If a module did not load its checkpoint.
    """
    from speechbrain.inference.classifiers import EncoderClassifier

    model_folder = os.path.abspath(model_folder)
    with tempfile.TemporaryDirectory() as tmp:
        model = EncoderClassifier.from_hparams(
            source=model_folder,
            savedir=savedir or tmp,
            run_opts={"device": "cpu"},
        )
        loadables = model.hparams.pretrainer.loadables
        for key in MODULE_KEYS:
            module = getattr(model.mods, key)
            state = module.state_dict()
            path = os.path.join(model_folder, f"{key}.ckpt")
            if key not in loadables or not os.path.isfile(path):
                # Constant buffers (Fbank's delta kernel) need no
                # checkpoint; parameters do.
                if any(True for _ in module.parameters()):
                    raise ExportError(
                        f"{key!r} has weights but the run did not "
                        "checkpoint it: add it to the checkpointer's "
                        "recoverables"
                    )
                continue
            if not state:
                continue
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if set(saved) != set(state):
                raise ExportError(
                    f"{path} does not match the {key!r} the yaml builds: "
                    f"missing {sorted(set(state) - set(saved))}, "
                    f"unexpected {sorted(set(saved) - set(state))}"
                )
            for name, value in state.items():
                if not torch.equal(value.cpu(), saved[name]):
                    raise ExportError(
                        f"{key}.{name} did not load from {path}"
                    )
        sample_rate = model.hparams.sample_rate
        noise = torch.randn(1, int(sample_rate), generator=torch.Generator()
                            .manual_seed(0))
        model.classify_batch(noise)
    return model


def main(argv=None):
    """Command line: ``export_encoder.py <run folder> <model folder>``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    dict
        What :func:`export_encoder` returned.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_folder",
                        help="the training run's output folder")
    parser.add_argument("model_folder", help="where to write the model")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--min_key", default="error",
                       help="export the checkpoint with the lowest value of "
                       "this meta key (default: error)")
    which.add_argument("--max_key", default=None,
                       help="export the checkpoint with the highest value "
                       "of this meta key")
    which.add_argument("--latest", action="store_true",
                       help="export the latest checkpoint")
    parser.add_argument("--no_verify", action="store_true",
                        help="skip loading the export back to check it")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    min_key = None if args.latest or args.max_key else args.min_key
    max_key = None if args.latest else args.max_key
    info = export_encoder(args.run_folder, args.model_folder,
                          min_key=min_key, max_key=max_key,
                          verify=not args.no_verify)
    print(f"Exported {info['checkpoint']} to {info['model_folder']}")
    return info


if __name__ == "__main__":
    main()
