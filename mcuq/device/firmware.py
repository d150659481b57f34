"""The validation link's C files in a generated project (both runtimes share them).

``src/mcuq_link.c`` speaks the protocol through the generated API (``<prefix>_init``,
``_invoke``, ``_input``, ``_output``), ``src/mcuq_link.h`` declares it and the four platform
hooks, and ``src/mcuq_link_port.cpp`` implements the hooks for the board's framework (the
emulator harnesses implement them for simavr and qemu instead). Only values mcuq computes reach
these files (numbers, the runtime id, a library id reduced to ``[A-Za-z0-9._-]``): no user text.
What differs between runtimes (the library named, the arena, whether its use is measured) is
declared by the backend (:class:`mcuq.backends.base.LinkIdentity`): nothing here tests a name.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mcuq.project.escape import Safe, code
from mcuq.project.render import environment

if TYPE_CHECKING:
    from mcuq.backends.base import LinkIdentity

LINK_FILES = (
    ("api/mcuq_link.h.j2", "src/mcuq_link.h"),
    ("api/mcuq_link.c.j2", "src/mcuq_link.c"),
    ("api/mcuq_link_port.cpp.j2", "src/mcuq_link_port.cpp"),
    ("api/tests_conftest.py.j2", "tests/conftest.py"),  # pytest --device PORT
)
PROTOCOL_VERSION = 1


def _token(text: str) -> Safe:
    """One protocol token: the identify line is split on spaces, and it goes into a C string
    (reduced to ``[A-Za-z0-9._-]``, so it is safe there as it is)."""
    return code(re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "unknown")


def _total_bytes(tensors: list[Any]) -> int:
    """Bytes of all the tensors back to back (the link's input or output space); the
    template contexts hold them as dicts or as objects."""
    return sum(int(t["nbytes"] if isinstance(t, dict) else t.nbytes) for t in tensors)


def link_context(context: dict[str, Any], identity: LinkIdentity) -> dict[str, Any]:
    """The ``link`` key of the templates: identity values the firmware reports (the runtime's
    own ones from ``identity``, declared by its backend)."""
    board = context["board"]
    arena = int(identity.arena_bytes)
    return {
        "runtime": _token(context["api"]["runtime"]),
        "library": _token(identity.library),
        "arena_measured": bool(identity.arena_measured),
        "crc32": int(context["model_crc32"]),
        "model_size": int(context["model_size"]),
        "arena_bytes": arena,
        "cpu_hz": int(board.clock_mhz) * 1_000_000,
        # the identify line's numbers in hex, as the protocol spells them (docs/device_protocol.md);
        # the ones known at generation time without leading zeros: fewer bytes of flash on AVR
        "crc32_hex": code(f"{int(context['model_crc32']):08x}"),
        "model_size_hex": code(f"{int(context['model_size']):x}"),
        "arena_hex": code(f"{arena:x}"),
        "cpu_hz_hex": code(f"{int(board.clock_mhz) * 1_000_000:x}"),
        "in_bytes_hex": code(f"{_total_bytes(context['inputs']):x}"),
        "out_bytes_hex": code(f"{_total_bytes(context['outputs']):x}"),
    }


def render_link(context: dict[str, Any], identity: LinkIdentity) -> dict[str, str]:
    """Project path -> text of the link's files (and the tests' --device option)."""
    env = environment()
    full = {**context, "link": link_context(context, identity)}
    return {path: env.get_template(template).render(**full) for template, path in LINK_FILES}
