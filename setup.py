"""Setuptools shim: every piece of metadata lives in ``pyproject.toml``.

For tools and users that look for a ``setup.py``. ``pip install .`` and
``python -m build`` read ``pyproject.toml`` (PEP 517/621) and do not need
this file; ``setup()`` without arguments reads the same metadata there.
"""

from setuptools import setup

setup()
