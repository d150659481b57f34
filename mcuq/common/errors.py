"""Errors that mcuq reports to users as one clear line.

Every failure a user can fix (bad file, bad data, a model the board cannot run) is an
``MCUQError``; the CLI prints its message and exits 1. Anything else is a bug in mcuq
and keeps its traceback.
"""

from __future__ import annotations


class MCUQError(Exception):
    """A problem with the user's input, described in one line with what to do."""


class ModelLoadError(MCUQError):
    """The model file or folder cannot be read as a supported model."""


class CalibrationError(MCUQError):
    """The calibration (or validation) data does not fit the model."""


class ConversionError(MCUQError):
    """The TFLite converter refused the model or produced something that is not full int8."""


class BoardError(MCUQError):
    """A board file is missing, malformed or does not match the schema."""


class FitError(MCUQError):
    """The model does not fit the board's RAM or flash."""


class UnsupportedOpError(MCUQError):
    """The model uses an op the chosen runtime or library does not provide."""


class OutputDirError(MCUQError):
    """The output folder holds files mcuq did not generate."""


class NativeCrashError(MCUQError):
    """The native TFLite Micro interpreter crashed in its child process."""


class ValidationFailed(MCUQError):
    """A host-side check of a generated project failed."""


class UsageError(MCUQError):
    """A command-line value out of its range (exit 2, like argparse's own usage errors)."""
