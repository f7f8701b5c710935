"""experiment_cli's --jobs: handed to a main() that takes ``jobs``, ignored (with a note) by one
that does not, refused below 1."""
import pytest
import torch

from matbal.lab.cli import experiment_cli
from matbal.lab.results import Results


@pytest.fixture(autouse=True)
def _keep_globals(monkeypatch):
    monkeypatch.setenv("MATBAL_NS_DTYPE", "float32")  # experiment_cli sets it when unset
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _with_jobs(quick=False, results_dir=None, jobs=1):
    return Results("with_jobs", [{"jobs": jobs, "quick": quick, "dir": results_dir}], {})


def _without_jobs(quick=False, results_dir=None):
    return Results("without_jobs", [{"quick": quick, "dir": results_dir}], {})


def test_jobs_reaches_a_main_that_takes_it(tmp_path):
    res = experiment_cli(_with_jobs, ["--quick", "--jobs", "3", "--results-dir", str(tmp_path)])
    assert res.rows == [{"jobs": 3, "quick": True, "dir": str(tmp_path)}]
    assert experiment_cli(_with_jobs, ["--results-dir", str(tmp_path)]).rows[0]["jobs"] == 1


def test_jobs_is_ignored_with_a_note_by_a_main_without_it(tmp_path, capsys):
    res = experiment_cli(_without_jobs, ["--jobs", "2", "--results-dir", str(tmp_path)])
    assert res.rows == [{"quick": False, "dir": str(tmp_path)}]
    assert "--jobs ignored" in capsys.readouterr().out
    experiment_cli(_without_jobs, ["--results-dir", str(tmp_path)])
    assert "--jobs ignored" not in capsys.readouterr().out


@pytest.mark.parametrize("jobs", ["0", "-2"])
def test_jobs_below_one_is_refused(jobs, capsys):
    with pytest.raises(SystemExit) as e:
        experiment_cli(_with_jobs, ["--jobs", jobs])
    assert e.value.code == 2 and "--jobs must be" in capsys.readouterr().err
