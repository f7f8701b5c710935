"""Analysis over a :class:`~matbal.instruments.MatrixStore`: equilibration tables and figures.

:func:`analyze_store` reuses :func:`matbal.analysis.equilibration_rows` on every selected record
(κ, stable rank, x_min, NS error measured and predicted, before/after none/R/C/RC/RACS) and writes
``equilibration.csv``, ``summary.csv`` and ``equilibration.png``/``.pdf`` (grouped run by run
when the store holds several runs).
"""
from .analyze import (METRICS, AnalysisResult, EmptyStoreError, NoMatchError, analyze_store,
                      runs_of, select_records, summarize)
from .figures import equilibration_figure

__all__ = ["analyze_store", "AnalysisResult", "EmptyStoreError", "NoMatchError",
           "select_records", "summarize", "runs_of", "equilibration_figure", "METRICS"]
