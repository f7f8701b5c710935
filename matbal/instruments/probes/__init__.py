"""Probes and recorders: instruments that ride on any ``torch.optim.Optimizer`` (every kind on a
:class:`~matbal.optim.ChainOptimizer`; ``grad``, ``update`` = parameter change and ``param`` on
others, through the step hooks: see :mod:`.base`).

- :class:`Probes` — spectral metrics of each matrix layer's ``grad``, ``momentum``, ``ns_input``
  and ``update`` (cheap every ``every`` steps, exact float64 SVD every ``exact_every``), the NS
  error measured and predicted, and the cosine to the AdamW direction; tidy rows to a sink.
- Sinks — :class:`CSVSink`, :class:`JSONLSink` (append + flush per step), :class:`MemorySink`;
  :func:`read_rows` reads a file back.
- :class:`Recorder` — puts chosen kinds/layers/steps into a :class:`~matbal.instruments.MatrixStore`
  (one atomic ``store.batch`` per step).
- :func:`plot_probe_traces` — a figure of probe rows (:mod:`.plot`).
- :mod:`.placement` — where each kind is observed in a chain; taps wrap transforms, so state keys
  and checkpoints are unchanged by attaching.

>>> import torch
>>> from matbal.optim import muon
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 2))
>>> opt = muon(net)
>>> with Probes(every=1).attach(opt) as probes:
...     net(torch.randn(4, 8)).sum().backward(); opt.step()
>>> len(probes.sink) > 0
True
"""
from .base import ALL_KINDS, HOOK_KINDS, param_names
from .metrics import CHEAP_METRICS, EXACT_METRICS, NS_METRICS, AdamShadow, NSSpec
from .placement import KINDS, tap_points
from .plot import PANELS, draw_probe_traces, plot_probe_traces, present_panels
from .probes import DEFAULT_EVERY, DEFAULT_EXACT_EVERY, Probes
from .recorder import Recorder
from .sinks import FIELDS, CSVSink, JSONLSink, MemorySink, Sink, read_rows

__all__ = ["Probes", "Recorder", "Sink", "CSVSink", "JSONLSink", "MemorySink", "read_rows",
           "FIELDS", "KINDS", "tap_points", "NSSpec", "AdamShadow", "CHEAP_METRICS",
           "EXACT_METRICS", "NS_METRICS", "DEFAULT_EVERY", "DEFAULT_EXACT_EVERY", "ALL_KINDS",
           "HOOK_KINDS", "param_names", "PANELS", "present_panels", "draw_probe_traces",
           "plot_probe_traces"]
