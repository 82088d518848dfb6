"""The workshop labs, found in ``labs/``: a lab is one folder ``NN-name/`` holding its
README, its ``check.py`` and whatever it ships. ``check.py`` names its
:class:`~obslab.labkit.base.Exercise` ``LAB``; the folder gives its number and name, so
adding lab 14 is adding ``labs/14-name/`` and nothing else.

The folders are not a Python package (their names start with a digit and hold hyphens),
so each check is loaded from its file, as pytest loads a test file.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path

from obslab.labkit.base import Exercise
from obslab.repo import LABS

FOLDER = re.compile(r"^(\d{2})-[a-z0-9-]+$")


class BrokenLab(Exception):
    """A lab folder whose check.py cannot be loaded or names no ``LAB``."""


def load(folder: Path) -> Exercise:
    """The exercise of one lab folder, numbered and named after it."""
    match = FOLDER.match(folder.name)
    if match is None:
        raise BrokenLab(f"{folder}: a lab folder is named NN-name (07-circuit-breakers)")
    name = f"obslab_lab_{match[1]}"
    spec = importlib.util.spec_from_file_location(name, folder / "check.py")
    if spec is None or spec.loader is None:
        raise BrokenLab(f"{folder / 'check.py'} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look their module up by name
    spec.loader.exec_module(module)
    exercise = getattr(module, "LAB", None)
    if not isinstance(exercise, Exercise):
        raise BrokenLab(f"{folder / 'check.py'} names no LAB (an Exercise)")
    exercise.number, exercise.folder = int(match[1]), folder.name
    return exercise


def discover(root: Path = LABS) -> dict[int, Exercise]:
    """Every lab under ``root``, by number."""
    folders = [
        f for f in sorted(root.iterdir()) if FOLDER.match(f.name) and (f / "check.py").is_file()
    ]
    return {exercise.number: exercise for exercise in map(load, folders)}


@functools.cache
def exercises() -> dict[int, Exercise]:
    """The repository's labs, loaded once, when a command first needs them."""
    return discover()
