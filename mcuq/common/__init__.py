"""Shared plumbing: errors, console output, child-process isolation, shipped data paths."""
