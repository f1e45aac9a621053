"""What every recipe's data preparation does the same way.

The recipes' ``prepare_*.py`` scripts read very different layouts, but
share their conventions, defined here once:

* every problem with the data is collected and raised at once, as one
  :class:`PreparationError` (a :class:`~speechbrain_relevance.errors.UserError`)
  listing each file and its reason;
* the options of a preparation, with a fingerprint of the dataset's files
  (:func:`files_fingerprint`), are stored next to the manifests in
  :data:`OPTIONS_FILE`; a later call with the same options reuses the
  manifests (:func:`up_to_date`);
* manifests are written atomically and the options last
  (:func:`write_manifests`), so an interrupted run is redone, never reused;
* each recipe loads its clips with :func:`load_clip` (its sample rate,
  peak normalisation, its length policy);
* the command lines take ``--data_folder`` and ``--save_folder`` and end
  through :func:`speechbrain_relevance.cli.run_main`: bad input prints one
  ``error:`` message and exits with status 1.

Authors
 * speechbrain-relevance developers
"""

import contextlib
import hashlib
import json
import os

from speechbrain_relevance.errors import UserError

__all__ = [
    "OPTIONS_FILE",
    "SPLITS",
    "PreparationError",
    "files_fingerprint",
    "format_problems",
    "header_problems",
    "manifest_paths",
    "manifests_ok",
    "read_json",
    "up_to_date",
    "write_json",
    "write_manifests",
]

#: The splits every preparation writes, as ``<split>.json``.
SPLITS = ("train", "valid", "test")

#: The options of the last preparation, next to its manifests.
OPTIONS_FILE = "prepare_options.json"

#: How many problems :meth:`PreparationError.summary` lists.
SUMMARY_LIMIT = 10


def format_problems(header, problems):
    """Render ``(path, reason)`` pairs under a header, one per line.

    Arguments
    ---------
    header : str
        The first line.
    problems : list of (str, str)
        ``(path, reason)`` pairs.

    Returns
    -------
    str
        The header and an indented line per problem.

    Example
    -------
    >>> print(format_problems("2 problem(s):", [("a.wav", "bad"),
    ...                                         ("b.wav", "worse")]))
    2 problem(s):
      a.wav: bad
      b.wav: worse
    """
    lines = [f"  {path}: {reason}" for path, reason in problems]
    return "\n".join([header, *lines])


class PreparationError(UserError, ValueError):
    """A dataset that cannot be prepared as asked: every problem at once.

    Each recipe subclasses it with its dataset's name (``dataset``) or its
    own first line (:meth:`default_header`).

    Arguments
    ---------
    problems : list of (str, str)
        ``(path, reason)`` for every problem found (the "path" may also
        name an option).
    header : str, optional
        First line of the message (default: :meth:`default_header`).
    hint : str
        Appended to the message (e.g. how to skip bad files).

    Example
    -------
    >>> e = PreparationError([("a.wav", "bad"), ("b.wav", "worse")])
    >>> print(e)
    2 problem(s) preparing the dataset:
      a.wav: bad
      b.wav: worse
    >>> e.summary(limit=1)
    '2 problem(s) preparing the dataset: a.wav: bad; ... and 1 more'
    """

    #: The dataset, as the default first line names it.
    dataset = "the dataset"

    def __init__(self, problems, header=None, hint=""):
        self.problems = list(problems)
        message = format_problems(header or self.default_header(),
                                  self.problems)
        if hint:
            message += "\n" + hint
        super().__init__(message)

    def default_header(self):
        """Return the first line of the message.

        Returns
        -------
        str
            ``"<n> problem(s) preparing <dataset>:"``.
        """
        return f"{len(self.problems)} problem(s) preparing {self.dataset}:"

    def summary(self, limit=SUMMARY_LIMIT):
        """Describe the problems on one line (the first ``limit`` of them).

        Arguments
        ---------
        limit : int
            Most problems listed; the others are counted.

        Returns
        -------
        str
            One line.
        """
        shown = [f"{p}: {r}" for p, r in self.problems[:limit]]
        more = len(self.problems) - len(shown)
        if more:
            shown.append(f"... and {more} more")
        return (
            f"{len(self.problems)} problem(s) preparing {self.dataset}: "
            + "; ".join(shown)
        ).replace("\n", " ")


def files_fingerprint(folder, rel_paths):
    """Content hashes of a dataset's metadata files, to detect edits.

    Stored with the manifests: preparation is redone when a csv changes,
    even if an edit kept its size and modification time (``cp -p``,
    ``rsync -t``).

    Arguments
    ---------
    folder : str
        The dataset's root folder.
    rel_paths : list of str
        The files, relative to ``folder``.

    Returns
    -------
    dict
        Relative path to SHA-256 hex digest (None if the file is missing).

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = open(os.path.join(folder, "meta.csv"), "w").write("a,b")
    >>> before = files_fingerprint(folder, ["meta.csv", "gone.csv"])
    >>> before["gone.csv"] is None
    True
    >>> _ = open(os.path.join(folder, "meta.csv"), "w").write("a,c")
    >>> files_fingerprint(folder, ["meta.csv", "gone.csv"]) == before
    False
    """
    stamp = {}
    for rel in rel_paths:
        digest = hashlib.sha256()
        try:
            with open(os.path.join(folder, rel), "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            stamp[rel] = digest.hexdigest()
        except OSError:
            stamp[rel] = None
    return stamp


def manifest_paths(save_folder, splits=SPLITS):
    """Return the manifest of each split: ``<save_folder>/<split>.json``.

    Arguments
    ---------
    save_folder : str
        Where the manifests go.
    splits : sequence of str
        The splits.

    Returns
    -------
    dict
        Split name to path.

    Example
    -------
    >>> manifest_paths("prep")["valid"]
    'prep/valid.json'
    """
    return {s: os.path.join(save_folder, f"{s}.json") for s in splits}


def read_json(path):
    """Return the content of a JSON file, or None if missing or broken.

    Arguments
    ---------
    path : str
        The file.

    Returns
    -------
    object or None
        The parsed content.

    Example
    -------
    >>> read_json("/nonexistent.json") is None
    True
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_text(path, text):
    r"""Write ``text`` to ``path`` atomically.

    The text goes to a temporary file of this process's own, renamed in
    one step: a kill leaves the old file (or none), never half a file,
    and a failed write (a full disk, Ctrl-C) also removes the temporary.

    Arguments
    ---------
    path : str
        The file.
    text : str
        Its content.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> write_text(path, "one\n")
    >>> open(path).read(), os.listdir(os.path.dirname(path))
    ('one\n', ['a.txt'])
    """
    # A temporary name of this process's own: folds run side by side may
    # write one shared file (the audio check cache of a seed's folder).
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_json(path, obj, newline=True):
    r"""Write ``obj`` as indented JSON, atomically (:func:`write_text`).

    Content that is not JSON raises before anything is written.

    Arguments
    ---------
    path : str
        The file.
    obj : object
        JSON-serialisable content.
    newline : bool
        End the file with a newline.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.json")
    >>> write_json(path, {"a": 1})
    >>> open(path).read()
    '{\n  "a": 1\n}\n'
    """
    write_text(path, json.dumps(obj, indent=2) + ("\n" if newline else ""))


def manifests_ok(paths, allow_empty=()):
    """Check that every manifest exists and holds a JSON object of clips.

    Arguments
    ---------
    paths : dict
        Split name to manifest path.
    allow_empty : sequence of str
        Splits whose manifest may be empty (e.g. a validation split that
        was not asked for).

    Returns
    -------
    bool
        True if all are usable.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "valid.json")
    >>> write_json(path, {})
    >>> manifests_ok({"valid": path}), manifests_ok({"valid": path},
    ...                                             allow_empty=["valid"])
    (False, True)
    """
    for split, path in paths.items():
        data = read_json(path)
        if not isinstance(data, dict):
            return False
        if not data and split not in allow_empty:
            return False
    return True


def up_to_date(save_folder, options, paths, allow_empty=()):
    """Whether ``save_folder`` holds manifests prepared with ``options``.

    Arguments
    ---------
    save_folder : str
        Where the manifests and :data:`OPTIONS_FILE` are.
    options : dict
        The options of this call (fingerprints of the data included).
    paths : dict
        Split name to manifest path.
    allow_empty : sequence of str
        Splits whose manifest may be empty.

    Returns
    -------
    bool
        True if the stored options equal ``options`` and every manifest is
        usable (:func:`manifests_ok`).

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> paths = manifest_paths(folder, ["test"])
    >>> write_manifests(folder, {"test": {"a": {}}}, {"seed": 1}, paths)
    >>> up_to_date(folder, {"seed": 1}, paths)
    True
    >>> up_to_date(folder, {"seed": 2}, paths)
    False
    """
    stored = read_json(os.path.join(save_folder, OPTIONS_FILE))
    return stored == options and manifests_ok(paths, allow_empty)


def write_manifests(save_folder, manifests, options, paths, newline=True):
    """Write the manifests, then the options that make them reusable.

    The stale options file goes first and the new one is written last: an
    interrupted run is redone by the next call, never taken for an
    up-to-date one.

    Arguments
    ---------
    save_folder : str
        Where :data:`OPTIONS_FILE` goes (created if needed).
    manifests : dict
        Split name to manifest content.
    options : dict
        The options of this preparation.
    paths : dict
        Split name to manifest path.
    newline : bool
        End each file with a newline (:func:`write_json`).

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> paths = manifest_paths(folder, ["test"])
    >>> write_manifests(folder, {"test": {}}, {"seed": 1}, paths)
    >>> sorted(os.listdir(folder))
    ['prepare_options.json', 'test.json']
    """
    os.makedirs(save_folder, exist_ok=True)
    options_path = os.path.join(save_folder, OPTIONS_FILE)
    if os.path.isfile(options_path):
        os.remove(options_path)
    for split, data in manifests.items():
        write_json(paths[split], data, newline)
    write_json(options_path, options, newline)


def header_problems(info, sample_rate=None, mono=True):
    """Reasons a clip's header does not fit a recipe's audio policy.

    Arguments
    ---------
    info : speechbrain_relevance.data.audio.AudioInfo
        The clip's header (``audio_info``).
    sample_rate : int, optional
        The required rate; None accepts any.
    mono : bool
        Require one channel.

    Returns
    -------
    list of str
        The reasons, empty if the header fits.

    Example
    -------
    >>> from speechbrain_relevance.data.audio import AudioInfo
    >>> header_problems(AudioInfo(16000, 2, 16000, "PCM_16"), 8000)
    ['sample rate 16000 Hz, expected 8000 Hz', '2 channels, expected mono']
    """
    reasons = []
    if sample_rate is not None and info.sample_rate != sample_rate:
        reasons.append(
            f"sample rate {info.sample_rate} Hz, expected {sample_rate} Hz"
        )
    if mono and info.channels != 1:
        reasons.append(f"{info.channels} channels, expected mono")
    return reasons
