"""The bench/ scripts as modules for tests: bench/ is a folder of scripts, not a package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load(name: str, monkeypatch) -> ModuleType:
    """bench/<name>.py loaded fresh under its own name (registered for the test only, so its
    dataclasses and pickling find it), whatever the test run's sys.path holds."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module
