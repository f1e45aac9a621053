r"""Read a run's ``hyperparams.yaml`` and write a model's inference yaml.

Both directions go through ``ruamel.yaml`` in round-trip mode, which keeps
HyperPyYAML's tags (``!new:``, ``!name:``, ``!apply:``, ``!ref``) as they
are. Module definitions are copied node by node from the run's resolved
yaml into the inference yaml, so whatever the training yaml built is what
the model folder builds; comments, anchors and aliases of the run's file
are left behind (see :func:`clean_copy`).

Authors
 * speechbrain-relevance developers
"""

import io

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.tag import Tag

from speechbrain_relevance.pipeline import MODULE_NAMES

__all__ = [
    "Tagged",
    "clean_copy",
    "dump_yaml",
    "encoder_hparams",
    "flow_list",
    "load_yaml",
    "node_tag",
    "ref",
    "relevance_hparams",
    "tagged_map",
    "to_plain",
]

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class Tagged:
    """A YAML value with a tag, e.g. ``!new:pkg.Class`` with its arguments.

    Arguments
    ---------
    tag : str
        The tag, with its ``!``.
    value : object
        Plain value: dict, list, scalar or None.

    Example
    -------
    >>> Tagged("!ref", "<a>") == Tagged("!ref", "<a>")
    True
    """

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return (
            isinstance(other, Tagged)
            and self.tag == other.tag
            and self.value == other.value
        )

    def __repr__(self):
        return f"Tagged({self.tag!r}, {self.value!r})"


def node_tag(node):
    """Return the explicit tag of a ruamel node (``!new:...``), or None.

    Arguments
    ---------
    node : object
        A node loaded in round-trip mode.

    Returns
    -------
    str or None
        The tag, without YAML's implicit map and sequence tags.

    Example
    -------
    >>> node_tag(load_yaml("!new:torch.nn.Linear {in_features: 2}"))
    '!new:torch.nn.Linear'
    >>> node_tag(load_yaml("{a: 1}")) is None
    True
    """
    tag = getattr(getattr(node, "tag", None), "value", None)
    if tag in (None, _MAP_TAG, _SEQ_TAG):
        return None
    return tag


def load_yaml(text_or_stream):
    """Load YAML in round-trip mode: tags and order are kept, nothing runs.

    Arguments
    ---------
    text_or_stream : str or file
        The YAML.

    Returns
    -------
    object
        ruamel nodes (``CommentedMap`` and friends).
    """
    return YAML().load(text_or_stream)


def to_plain(node):
    r"""Convert a round-trip ruamel node to plain Python values.

    Tagged nodes become :class:`Tagged`.

    Arguments
    ---------
    node : object
        A value loaded by :func:`load_yaml`.

    Returns
    -------
    object
        dict, list, str, int, float, bool, None or :class:`Tagged`.

    Example
    -------
    >>> to_plain(load_yaml("a: !new:torch.nn.Linear {in_features: 2}\nb: 1.5"))
    {'a': Tagged('!new:torch.nn.Linear', {'in_features': 2}), 'b': 1.5}
    """
    if isinstance(node, TaggedScalar):
        return Tagged(node_tag(node), node.value)
    if isinstance(node, dict):
        value = {str(k): to_plain(v) for k, v in node.items()}
    elif isinstance(node, (list, tuple)):
        value = [to_plain(v) for v in node]
    elif node is None:
        return None
    elif isinstance(node, (bool, ScalarBoolean)):
        # An anchored boolean loads as ScalarBoolean, an int subclass.
        return bool(node)
    elif isinstance(node, int):
        return int(node)
    elif isinstance(node, float):
        return float(node)
    else:
        return str(node)
    tag = node_tag(node)
    return Tagged(tag, value) if tag else value


def clean_copy(node, memo=None):
    r"""Copy a ruamel node with its tags and flow style, nothing else.

    Comments of the training yaml attach to whatever node precedes them
    (the commented-out relevance block ends up on ``compute_features``)
    and anchors name the run's aliases: neither means anything in the
    inference yaml. Scalars become plain Python values so that no anchor
    survives on them either. A container shared by two copied nodes stays
    shared (``memo``), which YAML writes as an anchor and an alias.

    Arguments
    ---------
    node : object
        A node loaded by :func:`load_yaml`.
    memo : dict, optional
        ``id(original) -> copy``, shared between calls.

    Returns
    -------
    object
        The copy.

    Example
    -------
    >>> run = load_yaml("n: &n 40  # bands\nm: !new:a.B {size: *n}")
    >>> print(dump_yaml({"m": clean_copy(run["m"])}).strip())
    m: !new:a.B
        size: 40
    """
    memo = {} if memo is None else memo
    if id(node) in memo:
        return memo[id(node)]
    if isinstance(node, TaggedScalar):
        new = TaggedScalar(value=node.value, tag=node_tag(node))
    elif isinstance(node, dict):
        new = CommentedMap()
        memo[id(node)] = new
        for key, value in node.items():
            new[str(key)] = clean_copy(value, memo)
    elif isinstance(node, (list, tuple)):
        new = CommentedSeq()
        memo[id(node)] = new
        new.extend(clean_copy(value, memo) for value in node)
        if isinstance(node, CommentedSeq) and node.fa.flow_style():
            new.fa.set_flow_style()
    else:
        return to_plain(node)
    tag = node_tag(node)
    if tag and not isinstance(new, TaggedScalar):
        new.yaml_set_ctag(Tag(suffix=tag))
    memo[id(node)] = new
    return new


def ref(key):
    """Make a ``!ref <key>`` node.

    Arguments
    ---------
    key : str
        The referenced top-level key.

    Returns
    -------
    ruamel.yaml.comments.TaggedScalar
        The node.

    Example
    -------
    >>> print(dump_yaml({"modules": {"a": ref("a")}}).strip())
    modules:
        a: !ref <a>
    """
    return TaggedScalar(value=f"<{key}>", tag="!ref")


def tagged_map(tag, items=None):
    """Make a tagged mapping: ``!new:pkg.Class`` with keyword arguments.

    Arguments
    ---------
    tag : str
        The tag, e.g. ``!new:speechbrain.dataio.encoder.CategoricalEncoder``.
    items : dict, optional
        Arguments. None or empty gives the bare tag (no arguments).

    Returns
    -------
    ruamel node
        A ``CommentedMap`` with the tag, or a ``TaggedScalar`` without
        arguments.

    Example
    -------
    >>> print(dump_yaml({"x": tagged_map("!new:a.B", {"c": True})}).strip())
    x: !new:a.B
        c: True
    """
    if not items:
        return TaggedScalar(value="", tag=tag)
    node = CommentedMap(items)
    node.yaml_set_ctag(Tag(suffix=tag))
    return node


def flow_list(values):
    """Make a list written on one line (wrapped where long), as SB does.

    Arguments
    ---------
    values : iterable
        Scalars.

    Returns
    -------
    ruamel.yaml.comments.CommentedSeq
        The sequence.
    """
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _yaml_writer():
    """Make a round-trip writer in SpeechBrain's style.

    Four-space indents, ``True``/``False`` (the toolkit's yamllint rule)
    and an explicit ``null`` (an empty value reads as a forgotten one).
    """
    yaml = YAML()
    yaml.indent(mapping=4, sequence=4, offset=4)
    yaml.width = 79
    yaml.boolean_representation = ["False", "True"]
    yaml.representer.add_representer(
        type(None),
        lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"),
    )
    return yaml


def dump_yaml(document, indent=4):
    """Write a document (a mapping of ruamel nodes and plain values).

    Arguments
    ---------
    document : dict
        Top-level keys to values. Comments set on a ``CommentedMap``
        (``yaml_set_start_comment``, ``yaml_set_comment_before_after_key``)
        are written too.
    indent : int
        Indentation of nested mappings and lists: 4 as in SpeechBrain's
        yaml files, 0 for lists under their key as model cards have them.

    Returns
    -------
    str
        The YAML text.

    Example
    -------
    >>> print(dump_yaml({"a": None, "b": [1, 2], "c": "0"}).strip())
    a: null
    b:
        - 1
        - 2
    c: '0'
    """
    stream = io.StringIO()
    writer = _yaml_writer()
    if indent != 4:
        writer.indent(mapping=2, sequence=indent + 2, offset=indent)
    writer.dump(document, stream)
    return stream.getvalue()


def _document(header, first_key, first_value):
    """Start a document: ``header`` comments, a blank line, a first key."""
    doc = CommentedMap()
    doc[first_key] = first_value
    doc.yaml_set_start_comment(header)
    _blank(doc, first_key)
    return doc


def _blank(doc, key):
    """Put a blank line before ``doc[key]``."""
    doc.yaml_set_comment_before_after_key(key, before="\n")


def _comment(doc, key, text):
    """Put ``# text`` lines, after a blank line, before ``doc[key]``."""
    doc.yaml_set_comment_before_after_key(key, before="\n" + text)


def pipeline_node(run_pipeline, nodes):
    r"""Build the inference yaml's ``pipeline``: the run's own settings.

    Arguments
    ---------
    run_pipeline : object
        The ``pipeline`` node of the run's yaml (round-trip loaded): its
        module arguments are aliases of the module nodes, its other
        arguments plain values and the ``clip_policy`` (a tagged map).
    nodes : dict
        Module name to its node in the run's yaml (exported modules).

    Returns
    -------
    ruamel node
        ``!new:...ClassificationPipeline`` with ``!ref <module>`` for
        every module and the run's own settings.

    Raises
    ------
    ValueError
        If the pipeline runs a module that is not exported, or a module
        argument is not one of the run's module definitions.

    Example
    -------
    >>> tree = load_yaml(
    ...     "clf: &c !new:torch.nn.Linear {in_features: 2}\n"
    ...     "policy: &p !new:speechbrain_relevance.pipeline.ClipPolicy\n"
    ...     "    sample_rate: 8000\n"
    ...     "pipeline: !new:speechbrain_relevance.pipeline."
    ...     "ClassificationPipeline\n"
    ...     "    classifier: *c\n"
    ...     "    classifier_input: sequence\n"
    ...     "    clip_policy: *p\n"
    ... )
    >>> node = pipeline_node(tree["pipeline"], {"classifier": tree["clf"]})
    >>> print(dump_yaml({"pipeline": node}).strip())
    pipeline: !new:speechbrain_relevance.pipeline.ClassificationPipeline
        classifier: !ref <classifier>
        classifier_input: sequence
        clip_policy: !new:speechbrain_relevance.pipeline.ClipPolicy
            sample_rate: 8000
    """
    plain = to_plain(run_pipeline)
    if not isinstance(plain, Tagged) or not isinstance(plain.value, dict):
        raise ValueError("'pipeline' is not an object definition")
    items = {}
    for key, value in run_pipeline.items():
        key = str(key)
        if key in MODULE_NAMES:
            if value is None:
                continue
            if key not in nodes or value is not nodes[key]:
                raise ValueError(
                    f"the pipeline's {key} is not the run's module {key!r}"
                )
            items[key] = ref(key)
        else:
            items[key] = _plain_node(to_plain(value))
    return tagged_map(plain.tag, items)


def _plain_node(value):
    """Turn a plain value (Tagged maps included) into a node to dump."""
    if isinstance(value, Tagged):
        inner = value.value if isinstance(value.value, dict) else None
        return tagged_map(
            value.tag,
            {k: _plain_node(v) for k, v in (inner or {}).items()},
        )
    if isinstance(value, dict):
        return {k: _plain_node(v) for k, v in value.items()}
    if isinstance(value, list):
        return flow_list(_plain_node(v) for v in value)
    return value


def relevance_hparams(run, nodes, run_pipeline, header):
    r"""Write the inference ``hyperparams.yaml`` of a relevance recipe model.

    Loaded by :class:`speechbrain_relevance.inference.RelevanceClassifier`:
    the run's module definitions and its own ``pipeline`` (classifier
    input, normalisation, patches, clip policy), nothing re-derived.

    Arguments
    ---------
    run : dict
        The run's hyperparameters as plain values (:func:`to_plain`).
    nodes : dict
        Module name to its ruamel node in the run's yaml, in pipeline
        order.
    run_pipeline : object
        The run's ``pipeline`` node (see :func:`pipeline_node`).
    header : str
        Comment lines (without ``#``) to put first.

    Returns
    -------
    str
        The YAML text.

    Example
    -------
    >>> tree = load_yaml(
    ...     "sample_rate: 8000\nlabels: ['0', '1']\n"
    ...     "clf: &c !new:torch.nn.Linear {in_features: 2}\n"
    ...     "pipeline: !new:speechbrain_relevance.pipeline."
    ...     "ClassificationPipeline {classifier: *c}\n"
    ... )
    >>> text = relevance_hparams(
    ...     to_plain(tree), {"classifier": tree["clf"]}, tree["pipeline"],
    ...     "A model")
    >>> print(text.split("\n\n")[1])
    sample_rate: 8000
    labels: ['0', '1']
    >>> "    classifier: !ref <classifier>" in text
    True
    """
    from speechbrain_relevance.inference import LABEL_ENCODER_FILE

    doc = _document(header, "sample_rate", int(run["sample_rate"]))
    doc["labels"] = flow_list(str(label) for label in run["labels"])
    _add_modules(doc, nodes)
    doc["label_encoder"] = tagged_map(
        "!new:speechbrain.dataio.encoder.CategoricalEncoder"
    )
    _comment(doc, "label_encoder", "Class names, from label_encoder.txt")
    doc["pipeline"] = pipeline_node(run_pipeline, nodes)
    _comment(
        doc,
        "pipeline",
        "Waveform to log-posteriors, as the training run built it: the\n"
        "classifier input, normalisation, patches and the clip policy\n"
        "(peak normalisation, crop, pad) of training",
    )
    doc["modules"] = {key: ref(key) for key in nodes}
    _blank(doc, "modules")
    loadables = {key: ref(key) for key in [*nodes, "label_encoder"]}
    doc["pretrainer"] = tagged_map(
        "!new:speechbrain_relevance.inference.ModelFolderPretrainer",
        {
            "loadables": loadables,
            "filenames": {"label_encoder": LABEL_ENCODER_FILE},
        },
    )
    _comment(
        doc,
        "pretrainer",
        "Every file is looked up next to this one, in the folder or hub\n"
        "repository given to from_hparams (no paths here: a relative path\n"
        "would be resolved against the current directory).",
    )
    return dump_yaml(doc)


def encoder_hparams(nodes, sample_rate, loadables, n_labels, header):
    r"""Write the inference ``hyperparams.yaml`` of an ``EncoderClassifier``.

    For SpeechBrain's embedding classifiers (the ECAPA-TDNN swap):
    ``compute_features -> mean_var_norm -> embedding_model ->
    classifier``.

    Arguments
    ---------
    nodes : dict
        Module name to its ruamel node in the run's yaml, in pipeline
        order.
    sample_rate : int
        Rate the model was trained at.
    loadables : list of str
        Keys the pretrainer loads from ``<key>.ckpt``.
    n_labels : int
        Number of classes in the label encoder.
    header : str
        Comment lines (without ``#``) to put first.

    Returns
    -------
    str
        The YAML text.

    Example
    -------
    >>> node = load_yaml("!new:torch.nn.Linear {in_features: 2, "
    ...                  "out_features: 3}")
    >>> text = encoder_hparams({"classifier": node}, 16000,
    ...                        ["classifier"], 3, "A model")
    >>> print(text.split("modules:")[0].split("\n\n", 1)[1].strip())
    sample_rate: 16000
    <BLANKLINE>
    classifier: !new:torch.nn.Linear
        in_features: 2
        out_features: 3
    >>> print(text.split("loadables:")[1].strip())
    classifier: !ref <classifier>
    """
    doc = _document(header, "sample_rate", int(sample_rate))
    _add_modules(doc, nodes)
    doc["modules"] = {key: ref(key) for key in nodes}
    _blank(doc, "modules")
    doc["label_encoder"] = tagged_map(
        "!new:speechbrain.dataio.encoder.CategoricalEncoder"
    )
    _comment(doc, "label_encoder", "Class names, from label_encoder.ckpt")
    label_count = CommentedSeq([ref("label_encoder"), int(n_labels)])
    label_count.yaml_set_ctag(
        Tag(suffix="!apply:speechbrain.dataio.encoder.CategoricalEncoder."
            "expect_len")
    )
    doc["label_count"] = label_count
    _comment(
        doc,
        "label_count",
        f"Decoding raises if label_encoder.ckpt does not hold the {n_labels}"
        "\nlabels the model was trained on (this also silences SpeechBrain's"
        '\n"expect_len was never called" warning).',
    )
    doc["audio_normalizer"] = tagged_map(
        "!new:speechbrain.dataio.preprocess.AudioNormalizer",
        {"sample_rate": ref("sample_rate")},
    )
    _comment(
        doc,
        "audio_normalizer",
        "Resamples and downmixes what classify_file reads to the training\n"
        "format.",
    )
    doc["pretrainer"] = tagged_map(
        "!new:speechbrain.utils.parameter_transfer.Pretrainer",
        {"loadables": {key: ref(key) for key in loadables}},
    )
    _comment(
        doc,
        "pretrainer",
        'No "paths:" on purpose: each loadable <name> is then fetched as\n'
        "<name>.ckpt from the folder given to from_hparams(source=...),\n"
        "wherever that folder is and whatever the current directory.",
    )
    return dump_yaml(doc)


def _add_modules(doc, nodes):
    """Copy the module definitions, a blank line before each."""
    memo = {}
    for key, node in nodes.items():
        doc[key] = clean_copy(node, memo)
        _blank(doc, key)
