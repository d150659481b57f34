"""Checks after deploy: float vs int8 metrics, per-layer error, the HTML/JSON report."""
