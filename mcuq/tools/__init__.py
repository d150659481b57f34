"""Maintenance tools run by hand or by tests (not by deploy/validate)."""
