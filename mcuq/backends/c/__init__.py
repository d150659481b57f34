"""Plain-C int8 runtime backend: model compiled to C99 calls, liveness memory planner, code generation."""
