"""Test-suite settings: hypothesis explores randomly on a developer's machine but replays a fixed
set of examples under CI (CI=true), so a landing is judged on reproducible draws."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
