"""Errors every process shares."""

from __future__ import annotations


class StartupError(RuntimeError):
    """A configuration problem worth a one-line message instead of a traceback."""
