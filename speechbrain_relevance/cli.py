"""Command-line conventions shared by every script of the project.

SpeechBrain spells its options with underscores (``--data_folder``,
``--output_folder``), so every CLI here does too. Options written with
hyphens by earlier versions (``--max-key``) keep working as hidden aliases.

Bad input ends a command with one line that names the problem and a
non-zero exit status, not a traceback: :func:`run_main` does that for the
exception types a command declares as user errors. :func:`load_hparams`,
which every recipe's ``train.py`` reads its yaml with, turns the mistakes
found while the hyperparameters are built (an override of a key that does
not exist, a value a class refuses) into configuration errors
(:class:`ConfigError`) naming the yaml key.

Authors
 * speechbrain-relevance developers
"""

import argparse
import difflib
import re
import sys

from speechbrain_relevance.errors import ConfigError, UserError

__all__ = [
    "ArgumentParser",
    "ConfigError",
    "UserError",
    "command_name",
    "load_hparams",
    "run_main",
]


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
        close_process_group()
    except kinds as e:
        # A missing file's OSError text is enough; no traceback.
        message = str(e) or type(e).__name__
        print(f"{name}: error: {message}", file=sys.stderr)
        _exit_after_error()
    except RuntimeError as e:
        # A collective operation that timed out or lost a process (under
        # torchrun): say at which stage, not gloo's or NCCL's text alone.
        message = _collective_failure(e)
        if message is None:
            raise
        print(f"{name}: error: {message}", file=sys.stderr)
        _exit_after_error()
    return 0


def _exit_after_error():
    """Exit with status 1 after a reported error.

    Under torchrun the process group is left open (the other processes
    may be gone or stuck), and a gloo group torn down by the
    interpreter's exit can abort the process (SIGABRT, "terminate called
    ..."), so that the run ends with a signal and C++ noise after its one
    line. A process in a group therefore ends at once, its output and
    logs flushed; any other raises ``SystemExit(1)``.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        import logging
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(1)
    raise SystemExit(1) from None


def _collective_failure(error):
    """One line for a failed collective operation, or None."""
    if "torch" not in sys.modules:
        return None
    from speechbrain_relevance.training.distributed import (
        distributed_failure,
    )

    return distributed_failure(error)


def close_process_group():
    """Leave the torchrun process group, if this process joined one.

    Called when a command's work is done. A gloo group left to the
    interpreter's exit can abort a process after its work is done
    ("terminate called without an active exception": a communication
    thread destroyed while still joinable), and torchrun then reports the
    whole run failed. So the objects that hold the group (the Brain's
    DistributedDataParallel wrappers) are collected first, every process
    waits for the others to arrive here (none closes its connections while
    another still uses them), and the group is shut down while the
    interpreter is whole. After an error nothing is waited for: torchrun
    stops the other processes.

    Example
    -------
    >>> close_process_group()  # not under torchrun: nothing to do
    """
    import gc

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    from speechbrain_relevance.training.distributed import mark_stage

    mark_stage("finishing: waiting for the other processes to finish")
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


#: hyperpyyaml's functions that build a yaml tag's object; their frames
#: hold the class or function being built (``callable_string``).
_BUILDERS = ("_construct_object", "_construct_name", "_apply_function")


def load_hparams(hparams_file, overrides=None):
    """Load a recipe's hyperparameters; mistakes raise :class:`ConfigError`.

    ``hyperpyyaml.load_hyperpyyaml`` with the errors a user can make
    turned into one-line configuration errors that name the yaml file and
    key: an override of a key the yaml lacks (with the keys it has), a
    ``!PLACEHOLDER`` left unset, a yaml syntax error, a numeric key of the
    wrong type or range or class names that do not fit the classes
    (:mod:`speechbrain_relevance.checks`, before any object is built), and
    a value refused by the class built from it (a ``ValueError`` or
    ``TypeError`` raised while the yaml's objects are built: they were
    given the yaml's values). Top-level keys that nothing reads are warned
    about (:func:`~speechbrain_relevance.checks.unread_keys`).
    A :class:`ConfigError` with ``keys`` is renamed from the class's
    argument names to the yaml keys they were set from.

    Arguments
    ---------
    hparams_file : str
        The yaml file.
    overrides : str or dict, optional
        Overrides, as ``speechbrain.parse_arguments`` returns them.

    Returns
    -------
    dict
        The loaded hyperparameters.

    Raises
    ------
    ConfigError
        For the mistakes above.

    Example
    -------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "hparams.yaml")
    >>> with open(path, "w") as f:
    ...     _ = f.write("{epochs: 2, batch_size: 8}")
    >>> load_hparams(path, "epochs: 3")["epochs"]
    3
    >>> load_hparams(path, "epoch: 3")
    Traceback (most recent call last):
    ...
    speechbrain_relevance.errors.ConfigError: ...: --epoch: no such key to \
override (did you mean --epochs?); the keys are epochs, batch_size
    """
    import io

    import ruamel.yaml
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_relevance import checks

    with open(hparams_file, encoding="utf-8") as fin:
        text = fin.read()
    try:
        # The plain values first, before any object is built with them.
        settings = checks.plain_settings(text, overrides)
        checks.check_settings(settings)
    except KeyError as e:
        raise _override_error(hparams_file, e) from e
    except ConfigError as e:
        raise ConfigError(f"{hparams_file}: {e}") from None
    except ValueError as e:  # a !PLACEHOLDER left unset
        raise _build_error(hparams_file, text, e, overrides) from e
    except ruamel.yaml.YAMLError as e:
        raise ConfigError(f"{hparams_file}: {_text(e)}") from e
    checks.warn_unread_keys(hparams_file, text)
    try:
        return load_hyperpyyaml(io.StringIO(text), overrides)
    except KeyError as e:
        raise _override_error(hparams_file, e) from e
    except (ValueError, TypeError, ImportError) as e:
        raise _build_error(hparams_file, text, e, overrides) from e
    except ruamel.yaml.YAMLError as e:
        raise ConfigError(f"{hparams_file}: {_text(e)}") from e


def _override_error(hparams_file, error):
    """Return the error for hyperpyyaml's ``KeyError`` (unknown override)."""
    found = re.match(r"Override '(.+?)' not found in: (\[.*\])$", _text(error))
    if found is None:
        return ConfigError(f"{hparams_file}: {_text(error)}")
    return _unknown_override(hparams_file, *found.groups())


def _text(error):
    """Return an exception's message on one line (with hyperpyyaml's args)."""
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    else:
        text = "; ".join(str(a) for a in error.args) or type(error).__name__
    return " ".join(text.split())


def _unknown_override(hparams_file, key, known):
    """Return the error for an override of a key the yaml does not have."""
    import ast

    # hyperpyyaml lists the keys of the level the override missed.
    keys = [k for k in ast.literal_eval(known) if not k.startswith("__")]
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean --{close[0]}?)" if close else ""
    return ConfigError(
        f"{hparams_file}: --{key}: no such key to override{hint}; the keys "
        f"are {', '.join(keys)}"
    )


#: Python's messages for text that int() or float() cannot convert.
_CONVERSION = re.compile(
    r"(?:invalid literal for (int)\(\) with base \d+|could not convert "
    r"string to (float)): (.+)$"
)


def _build_error(hparams_file, text, error, overrides=None):
    """Return a ``ConfigError`` naming the key whose object refused a value."""
    message = _text(error)
    placeholder = re.match(r"'(.+)' is a !PLACEHOLDER", message)
    if placeholder:
        key = placeholder.group(1)
        return ConfigError(
            f"{hparams_file}: {key} has no value: give --{key}=..."
        )
    callable_string, node = None, None
    tb = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name in _BUILDERS and "callable_string" in (
            frame.f_locals
        ):
            callable_string = frame.f_locals["callable_string"]
            node = frame.f_locals.get("node")
        tb = tb.tb_next
    blocks, refs = _yaml_blocks(text, callable_string)
    if isinstance(error, ConfigError) and error.keys:
        message = str(error.renamed(refs))
    else:
        # A text where the yaml has a number fails wherever it is first
        # used, with Python's message (a comparison, int()) naming no key.
        python_says = isinstance(error, TypeError) or _CONVERSION.match(
            message
        )
        mistyped = python_says and _mistyped_override(
            text, overrides, refs.values()
        )
        if mistyped:
            return ConfigError(f"{hparams_file}: {mistyped}")
        message = _name_bad_value(message, node, refs)
    where = f"{' / '.join(blocks)}: " if blocks else ""
    return ConfigError(f"{hparams_file}: {where}{message}")


def _yaml_blocks(text, callable_string):
    """Top-level keys building ``callable_string``, and their references.

    Returns
    -------
    list of str
        The top-level keys whose block has a ``!new:``, ``!name:`` or
        ``!apply:`` tag of ``callable_string``.
    dict
        Argument name to the key of its ``!ref <key>``, in those blocks.
    """
    if not callable_string:
        return [], {}
    tag = re.compile(
        r"!(?:new|name|apply):" + re.escape(callable_string) + r"\b"
    )
    ref = re.compile(r"^\s+([\w.]+):\s*!ref\s+<([\w.\[\]]+)>\s*$")
    blocks, refs, key, lines = [], {}, None, []

    def close_block():
        if key is not None and any(tag.search(line) for line in lines):
            blocks.append(key)
            for line in lines:
                found = ref.match(line)
                if found:
                    refs.setdefault(*found.groups())

    for line in text.splitlines():
        top = re.match(r"([A-Za-z_][\w.]*)\s*:", line)
        if top:
            close_block()
            key, lines = top.group(1), []
        lines.append(line)
    close_block()
    return blocks, refs


def _mistyped_override(text, overrides, keys):
    """Say which of ``keys`` was overridden with text for a number."""
    import ruamel.yaml

    if not overrides:
        return None
    yaml = ruamel.yaml.YAML(typ="safe", pure=True)
    try:
        given = (
            overrides if isinstance(overrides, dict) else yaml.load(overrides)
        )
    except ruamel.yaml.YAMLError:
        return None
    for key in dict.fromkeys(keys):
        value = (given or {}).get(key)
        if not isinstance(value, str):
            continue
        found = re.search(
            rf"^{re.escape(key)}:[ \t]*([^#\n]*?)[ \t]*(?:#.*)?$",
            text,
            re.MULTILINE,
        )
        try:
            default = yaml.load(found.group(1)) if found else None
        except ruamel.yaml.YAMLError:
            continue
        if isinstance(default, bool) or not isinstance(
            default, (int, float)
        ):
            continue
        kind = "an integer" if isinstance(default, int) else "a number"
        return (
            f"{key}={value!r} is not {kind} (the yaml's value is {default})"
        )
    return None


def _name_bad_value(message, node, refs):
    """Say which key holds a value Python could not convert."""
    found = _CONVERSION.match(message)
    if not found or node is None:
        return message
    kind = "an integer" if found.group(1) else "a number"
    bad = found.group(3).strip("'\"")
    for arg, value in getattr(node, "value", None) or []:
        if getattr(value, "value", None) == bad and isinstance(
            getattr(arg, "value", None), str
        ):
            key = refs.get(arg.value, arg.value)
            return f"{key}={bad!r} is not {kind}"
    return message
