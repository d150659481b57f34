"""Runtimes a model can be deployed with: ``tflm`` (TensorFlow Lite Micro) and, later, ``c``."""
