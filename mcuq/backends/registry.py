"""Which runtimes exist: name -> the package that implements it.

Kept apart from the Backend interface (``base.py``) so that reading a manifest
(``mcuq.project.manifest``, plain data) can find a runtime's section type without importing
the interface, and the interface can name the manifest's types without a loop. Imports
nothing of mcuq.
"""

from __future__ import annotations

import importlib

# name -> package holding backend.py (BACKEND) and section.py (SECTION). Adding a runtime adds a
# line here, nothing else outside its package.
BACKEND_PACKAGES: dict[str, str] = {
    "tflm": "mcuq.backends.tflm",
    "c": "mcuq.backends.c",
}


def backend_names() -> list[str]:
    return list(BACKEND_PACKAGES)


def section_type(name: str) -> type | None:
    """The dataclass of runtime ``name``'s part of the manifest (None: no such runtime). Its
    module is tiny and imports nothing of mcuq, so reading a manifest loads no backend."""
    package = BACKEND_PACKAGES.get(name)
    if package is None:
        return None
    section: type = importlib.import_module(f"{package}.section").SECTION
    return section
