"""The set-up promises: environment.yml agrees with pyproject, README and CI keep the two commands."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = set(), set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip |= {_name(d) for d in dep["pip"] if not d.startswith("-e")}
        else:
            conda.add(CONDA_TO_PIP.get(_name(dep), _name(dep)))
    conda -= {"python", "pip"}
    project = _pyproject()
    runtime = {_name(d) for d in project["dependencies"]}
    extras = {_name(d) for group in project["optional-dependencies"].values() for d in group}
    assert conda == runtime
    assert pip == extras


def test_environment_yml_versions_agree_with_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs = {}
    for dep in env["dependencies"]:
        for d in (dep["pip"] if isinstance(dep, dict) else [dep]):
            if not d.startswith("-e"):
                specs[CONDA_TO_PIP.get(_name(d), _name(d))] = d.replace(" ", "")
    project = _pyproject()
    extras = [d for group in project["optional-dependencies"].values() for d in group]
    for d in project["dependencies"] + extras:
        bound = d.replace(" ", "")[len(_name(d)):]
        assert specs[_name(d)].endswith(bound), (d, specs[_name(d)])


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_no_pickle_loading_in_the_package():
    for path in (ROOT / "matbal").rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text, path
        assert not re.search(r"torch\.load\((?![^)]*weights_only=True)", text), path
