"""Where the shipped data lives: ``boards/`` and ``firmware_templates/``.

In a source checkout they sit beside the package; an installed wheel carries them inside
``mcuq/_data`` (see pyproject.toml). Code asks here instead of guessing paths.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # mcuq/


def _find(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"mcuq installation is incomplete: '{name}' folder not found next to {_PACKAGE}")


def boards_dir() -> Path:
    return _find("boards")


def templates_dir() -> Path:
    return _find("firmware_templates")
