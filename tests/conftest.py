"""Test-suite settings.

- torch runs on one thread: the tests are dominated by small matrices, where a second thread buys
  nothing and, whenever another process shares the cores, OpenMP oversubscription made single tests
  10–30× slower on our 2-core machines.
- hypothesis explores randomly on a developer's machine but replays a fixed set of examples under CI
  (CI=true), so a landing is judged on reproducible draws.
"""
import os

import torch
from hypothesis import settings

torch.set_num_threads(1)

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
