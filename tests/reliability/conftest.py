"""Fixtures of the reliability tests: ``harness``, the kill/resume tool (``tools/kill_resume.py``,
not a package) loaded as a module."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "kill_resume.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("kill_resume", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
