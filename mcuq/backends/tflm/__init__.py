"""TensorFlow Lite Micro backend: op resolver, arena plan, fit, template context."""
