"""How to quantize: the options every front-end step reads, in a module of their own so the
converter and the TensorFlow-side configuration both import them without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from mcuq.common.errors import ConversionError
from mcuq.frontend.calibration import DEFAULT_SAMPLES

IO_TYPES = ("int8", "uint8", "float32")
ACTIVATION_TYPES = ("int8", "int16")
# Weight scales: "all" per-channel everywhere; "none" per-tensor everywhere; "auto" (the
# default) per-channel conv/depthwise, per-tensor Dense (TFLite Micro keeps two int32 per
# output channel of a per-channel FULLY_CONNECTED in the arena; deploy may switch Dense
# back to per-channel when validation data shows per-tensor costs accuracy).
PER_CHANNEL_MODES = ("auto", "all", "none")


class QuantizeOptionFields(TypedDict, total=False):
    """:class:`QuantizeOptions` as keyword arguments (``DeployRequest.options``, mcuq.toml keys)."""

    io: str
    activations: str
    per_channel: str  # auto | all | none
    calibration_samples: int
    seed: int
    image_scale: str


@dataclass(frozen=True)
class QuantizeOptions:
    """How to quantize; recorded verbatim in every output so a build can be reproduced."""

    io: str = "int8"
    activations: str = "int8"
    per_channel: str = "auto"
    calibration_samples: int = DEFAULT_SAMPLES
    seed: int = 0
    image_scale: str = "0..1"

    def __post_init__(self) -> None:
        # Older configs and callers say per_channel = true/false.
        if isinstance(self.per_channel, bool):
            object.__setattr__(self, "per_channel", "all" if self.per_channel else "none")

    def validate(self) -> None:
        if self.per_channel not in PER_CHANNEL_MODES:
            raise ConversionError(f"--per-channel {self.per_channel}: choose one of {', '.join(PER_CHANNEL_MODES)}")
        if self.io not in IO_TYPES:
            raise ConversionError(f"--io {self.io}: choose one of {', '.join(IO_TYPES)}")
        if self.activations not in ACTIVATION_TYPES:
            raise ConversionError(f"--activations {self.activations}: choose int8 or int16")
        if self.activations == "int16" and self.io == "uint8":
            raise ConversionError("--io uint8 works with int8 activations only; use --io int8/float32 with --activations int16")
        if self.calibration_samples < 1:
            raise ConversionError("--calibration-samples must be at least 1")
        if not 0 <= self.seed < 2**32:
            raise ConversionError(f"--seed {self.seed}: give 0 to {2**32 - 1}")
