"""Runtimes a model can be deployed with. Each backend plans memory, checks the fit and renders its project files."""
