"""Analyses composed from kernels: tidy tables a demo, an experiment or the store can reuse."""
from .equilibration import BALANCINGS, equilibration_rows

__all__ = ["BALANCINGS", "equilibration_rows"]
