"""Exceptions raised by depth_anything_cpp: see :mod:`depth_anything_cpp._errors`, where they are
defined (importable by the compiled core without the package)."""

from __future__ import annotations

from ._errors import *  # noqa: F401,F403  (the public names, listed once in _errors.__all__)
from ._errors import __all__  # noqa: F401
