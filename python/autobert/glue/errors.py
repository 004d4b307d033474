"""Errors raised by the GLUE package."""
from __future__ import annotations

from pathlib import Path

__all__ = ["GlueFormatError", "GlueFileNotFoundError"]


class GlueFormatError(ValueError):
    """A GLUE file does not have the expected layout.

    The message starts with ``path:line`` (1-based line number in the file, the header being line 1
    where a file has one), then says what was wrong and what layout was expected.
    """

    def __init__(self, path: str | Path, line: int, problem: str, expected: str = ""):
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.expected = expected
        msg = f"{self.path}:{line}: {problem}"
        if expected:
            msg += f" (expected {expected})"
        super().__init__(msg)


class GlueFileNotFoundError(FileNotFoundError):
    """A task folder or split file is missing; the message lists what the folder should hold."""
