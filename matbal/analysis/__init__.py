"""Analyses composed from kernels: tidy tables a demo, an experiment or the store can reuse."""
from .equilibration import BALANCINGS, balance_label, equilibration_rows

__all__ = ["BALANCINGS", "balance_label", "equilibration_rows"]
