"""Which runtimes exist: name -> the package that implements it.

Kept apart from the Backend interface (``base.py``) so that reading a manifest
(``mcuq.project.manifest``, plain data) can find a runtime's section type without importing
the interface, and the interface can name the manifest's types without a loop. Imports
nothing of mcuq.

A runtime shipped with mcuq is one line in :data:`BUILTIN_BACKENDS`. A runtime from another
package registers itself, as hls4ml's backends do, with an entry point in the group
``mcuq.backends`` (``null = "my_package.null_runtime"`` under
``[project.entry-points."mcuq.backends"]``): nothing in mcuq changes.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "mcuq.backends"

# name -> package holding backend.py (BACKEND) and section.py (SECTION, and BOARD_SECTION if any).
BUILTIN_BACKENDS: dict[str, str] = {
    "tflm": "mcuq.backends.tflm",
    "c": "mcuq.backends.c",
}


def backend_packages() -> dict[str, str]:
    """Every runtime: the built-in ones, then the plugins installed now (a built-in name wins).

    Read afresh at each call, so a plugin installed into the running environment is seen."""
    plugins = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**BUILTIN_BACKENDS, **{name: package for name, package in plugins.items() if name not in BUILTIN_BACKENDS}}


def backend_names() -> list[str]:
    return list(backend_packages())


def section_type(name: str) -> type | None:
    """The dataclass of runtime ``name``'s part of the manifest (None: no such runtime). Its
    module is tiny and imports nothing of mcuq, so reading a manifest loads no backend."""
    package = backend_packages().get(name)
    if package is None:
        return None
    section: type = importlib.import_module(f"{package}.section").SECTION
    return section


def board_sections() -> list[type]:
    """The board-file tables the runtimes declare (``BOARD_SECTION`` in each ``section.py``; a
    runtime without a table of its own declares None), in registry order. ``mcuq.boards`` parses
    them; their modules import nothing of mcuq, so loading a board loads no backend."""
    kinds = []
    for package in backend_packages().values():
        kind = getattr(importlib.import_module(f"{package}.section"), "BOARD_SECTION", None)
        if kind is not None:
            kinds.append(kind)
    return kinds
