// mcuq shim: Chirale_TensorFlowLite.h includes <Wire.h>; nothing of it is used.
#pragma once
