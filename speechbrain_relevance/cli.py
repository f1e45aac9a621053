"""Command-line conventions shared by every script of the project.

SpeechBrain spells its options with underscores (``--data_folder``,
``--output_folder``), so every CLI here does too. Options written with
hyphens by earlier versions (``--max-key``) keep working as hidden aliases.

Bad input ends a command with one line that names the problem and a
non-zero exit status, not a traceback: :func:`run_main` does that for the
exception types a command declares as user errors.

Authors
 * speechbrain-relevance developers
"""

import argparse
import sys

__all__ = [
    "ArgumentParser",
    "ConfigError",
    "UserError",
    "command_name",
    "run_main",
]


class UserError(Exception):
    """Bad input from the user: printed as one line, exit status 1."""


class ConfigError(UserError, ValueError):
    """A configuration (hparams, options) that cannot work."""


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` that accepts both option spellings.

    Every long option is registered with underscores (the spelling shown in
    ``--help``) and, where it differs, with hyphens as a hidden alias.

    Example
    -------
    >>> parser = ArgumentParser(prog="demo")
    >>> _ = parser.add_argument("--max_key", default="acc")
    >>> _ = parser.add_argument("--no-verify", action="store_true")
    >>> args = parser.parse_args(["--max-key", "loss", "--no_verify"])
    >>> args.max_key, args.no_verify
    ('loss', True)
    >>> "--max-key" in parser.format_help()
    False
    """

    def add_argument(self, *names, **kwargs):
        """Add an argument under both spellings of each long option."""
        return _add_both_spellings(super().add_argument, names, kwargs)

    def add_argument_group(self, *args, **kwargs):
        """Add a group whose arguments also accept both spellings."""
        group = super().add_argument_group(*args, **kwargs)
        _patch(group)
        return group

    def add_mutually_exclusive_group(self, **kwargs):
        """Add an exclusive group accepting both spellings."""
        group = super().add_mutually_exclusive_group(**kwargs)
        _patch(group)
        return group


def _spellings(names):
    """Underscore spelling first, hyphen alias second, for long options."""
    shown, hidden = [], []
    for name in names:
        if name.startswith("--"):
            under = "--" + name[2:].replace("-", "_")
            hyphen = "--" + name[2:].replace("_", "-")
            shown.append(under)
            if hyphen != under:
                hidden.append(hyphen)
        else:
            shown.append(name)
    return shown, hidden


def _add_both_spellings(add, names, kwargs):
    shown, hidden = _spellings(names)
    if not hidden:
        return add(*shown, **kwargs)
    if "dest" not in kwargs and any(n.startswith("--") for n in shown):
        long_name = next(n for n in shown if n.startswith("--"))
        kwargs["dest"] = long_name[2:]
    action = add(*shown, *hidden, **kwargs)
    # Help lists only the underscore spelling.
    action.option_strings[:] = [
        s for s in action.option_strings if s not in hidden
    ]
    container = getattr(add, "__self__", None)
    if container is not None:
        for alias in hidden:
            container._option_string_actions[alias] = action
    return action


def _patch(group):
    plain = group.add_argument

    def add_argument(*names, **kwargs):
        return _add_both_spellings(plain, names, kwargs)

    group.add_argument = add_argument
    # Exclusive groups nested in a group.
    if hasattr(group, "add_mutually_exclusive_group"):
        nested = group.add_mutually_exclusive_group

        def add_exclusive(**kwargs):
            sub = nested(**kwargs)
            _patch(sub)
            return sub

        group.add_mutually_exclusive_group = add_exclusive


def command_name(script, module):
    """Name a command as the user typed it: console script or ``-m``.

    Arguments
    ---------
    script : str
        The console script, e.g. ``"sb-relevance-export"``.
    module : str
        The module run with ``python -m``.

    Returns
    -------
    str
        ``script`` if that is what runs, else ``"python -m <module>"``.

    Example
    -------
    >>> command_name("sb-relevance-export", "speechbrain_relevance.export")
    'python -m speechbrain_relevance.export'
    """
    name = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else ""
    if name.startswith(script):
        return script
    return f"python -m {module}"


def run_main(main, argv=None, user_errors=(), prog=None):
    """Run ``main(argv)``; report user errors in one line and exit non-zero.

    Arguments
    ---------
    main : callable
        The command's ``main(argv)``.
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` by default).
    user_errors : tuple of type
        Exception types that mean bad input. :class:`UserError`,
        ``FileNotFoundError``, ``NotADirectoryError``, ``IsADirectoryError``
        and ``PermissionError`` always count.
    prog : str, optional
        Name printed before the message (the script's name by default).

    Returns
    -------
    int
        0 on success; raises ``SystemExit(1)`` on a user error.

    Example
    -------
    >>> def main(argv):
    ...     raise UserError(f"no such run folder: {argv[0]}")
    >>> import contextlib
    >>> try:
    ...     with contextlib.redirect_stderr(sys.stdout):
    ...         run_main(main, ["runs/x"], prog="demo")
    ... except SystemExit as e:
    ...     print("exit", e.code)
    demo: error: no such run folder: runs/x
    exit 1
    """
    kinds = (
        UserError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        *user_errors,
    )
    name = prog or (sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "cli")
    try:
        main(sys.argv[1:] if argv is None else argv)
    except kinds as e:
        # A missing file's OSError text is enough; no traceback.
        message = str(e) or type(e).__name__
        print(f"{name}: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    return 0
