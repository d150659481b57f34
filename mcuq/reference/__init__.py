"""The x86 TensorFlow Lite Micro interpreter, run in a child process: the reference every check compares against."""
