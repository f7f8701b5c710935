"""Analyses composed from kernels: tidy tables a demo, an experiment or the store can reuse."""
from .equilibration import BALANCINGS, balance_label, equilibration_rows
from .model import ModelAnalysis, analyze_model, load_weights, model_figure

__all__ = ["BALANCINGS", "balance_label", "equilibration_rows", "ModelAnalysis", "analyze_model",
           "load_weights", "model_figure"]
