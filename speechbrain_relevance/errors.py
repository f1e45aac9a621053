"""The project's error types, apart from what raises them.

Bad input ends a command with one line that names the problem (the file,
the yaml key, the option) and a non-zero exit status:
:func:`speechbrain_relevance.cli.run_main` prints every
:class:`UserError` that way instead of a traceback. The data loading, the
training, the pipeline and the exporter raise these without importing the
command-line module.

Authors
 * speechbrain-relevance developers
"""

__all__ = [
    "AudioFileError",
    "CheckpointFileError",
    "ConfigError",
    "ExportError",
    "ManifestError",
    "UserError",
]


class UserError(Exception):
    """Bad input from the user: printed as one line, exit status 1."""


class ConfigError(UserError, ValueError):
    """A configuration (hparams, options) that cannot work.

    A class does not know the yaml key its argument was set from (the
    FSDD recipe's ``head_split`` is ``MultiHeadRelevance``'s ``split``).
    So the message may write the arguments it is about as ``{name}``
    fields, listed in ``keys``: they read as the argument names, and
    :meth:`renamed` puts in the names the user wrote.

    Arguments
    ---------
    message : str
        The message; with ``keys``, a ``str.format`` template.
    keys : sequence of str
        The argument names written as fields in ``message``.

    Example
    -------
    >>> e = ConfigError("{split}=[1, 2] needs 2 heads", keys=["split"])
    >>> str(e)
    'split=[1, 2] needs 2 heads'
    >>> str(e.renamed({"split": "head_split"}))
    'head_split=[1, 2] needs 2 heads'
    """

    def __init__(self, message, keys=()):
        self.template = message
        self.keys = tuple(keys)
        super().__init__(self._fill({}))

    def _fill(self, names):
        if not self.keys:
            return self.template
        return self.template.format_map(
            {key: names.get(key, key) for key in self.keys}
        )

    def renamed(self, names):
        """Return the error with argument names replaced.

        Arguments
        ---------
        names : dict
            Argument name to the name to show (e.g. a yaml key).

        Returns
        -------
        ConfigError
            The same error, its message naming ``names``' values.
        """
        return ConfigError(self._fill(names))


class AudioFileError(UserError, RuntimeError):
    """An audio file is missing, unreadable or not in the expected format.

    Arguments
    ---------
    path : str
        The offending file.
    reason : str
        What is wrong with it.
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ManifestError(UserError, ValueError):
    """A manifest that cannot be trained or evaluated on."""


class CheckpointFileError(UserError, RuntimeError):
    """A checkpoint file that is missing, unreadable or not just tensors."""


class ExportError(UserError):
    """The run cannot be exported, or the export does not load back."""
