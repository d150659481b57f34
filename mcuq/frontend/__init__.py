"""Front end: what the user hands in (mcuq.toml, a Keras/SavedModel/.tflite file, calibration data) becomes a full-int8 .tflite."""
