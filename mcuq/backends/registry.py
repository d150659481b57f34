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
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T", str, bool)

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


@dataclass(frozen=True)
class BackendOption(Generic[T]):
    """A deploy or validate option one runtime declares (``OPTIONS`` in its ``section.py``).

    The CLI adds ``--name-with-dashes`` to each command in ``commands`` and ``mcuq.toml`` accepts
    ``name`` (deploy options), both from this declaration; the value reaches the backend in
    ``DeployJob.options`` / ``ValidateOptions.values`` and the backend reads it typed with
    :meth:`read`. ``kind`` is ``str`` (a value, one of ``choices`` when given) or ``bool`` (a
    switch); ``path`` marks a file or folder (relative to mcuq.toml, checked like every path
    deploy records); ``requires`` names another option of the same command it needs."""

    name: str
    kind: type[T]
    help: str
    commands: tuple[str, ...] = ("deploy",)
    choices: tuple[str, ...] = ()
    path: bool = False
    metavar: str | None = None
    requires: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def read(self, values: Mapping[str, object]) -> T | None:
        """This option's value in ``values`` (None: not given); ``values`` were checked by :meth:`problem`."""
        value = values.get(self.name)
        return value if isinstance(value, self.kind) else None

    def problem(self, value: object) -> str | None:
        """What is wrong with ``value`` for this option, in words (None: nothing)."""
        if not isinstance(value, self.kind) or (self.kind is str and isinstance(value, bool)):
            return f"must be {'true or false' if self.kind is bool else 'a string'}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"{value!r} is not one of {', '.join(self.choices)}"
        return None


def declared_options(command: str) -> list[tuple[str, BackendOption[str] | BackendOption[bool]]]:
    """(runtime, option) for every option a registered runtime declares for ``command`` ('deploy'
    or 'validate'), in registry order. Read from the runtimes' ``section.py``, which import nothing
    of mcuq, so building the CLI loads no backend (``mcuq --help`` stays fast)."""
    found = []
    for name, package in backend_packages().items():
        for option in getattr(importlib.import_module(f"{package}.section"), "OPTIONS", ()):
            if command in option.commands:
                found.append((name, option))
    return found
