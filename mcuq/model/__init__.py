"""The inspected model: ops, tensors and quantization parameters read from the .tflite flatbuffer, and the integer math on them."""
