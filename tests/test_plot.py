"""`matbal plot RUN_DIR` and the probe-trace figure: PNGs of loss curves and probe panels."""
import doctest

import pytest

import matbal.instruments.probes.plot as probe_plot
import matbal.train.plot as run_plot
from matbal.cli import main
from matbal.instruments.probes import present_panels, plot_probe_traces
from matbal.train import TrainConfig, train


def _run(tmp_path, name, **kw):
    cfg = TrainConfig(model="mlp", optimizer="muon", steps=6, eval_every=3, log_every=2,
                      warmup_steps=1, mlp_hidden=16, quiet=True, threads=1,
                      out_dir=str(tmp_path), run_name=name, **kw)
    return train(cfg).run_dir


def _png_size(path):
    import matplotlib.image

    img = matplotlib.image.imread(str(path))
    return img.shape[1], img.shape[0]


@pytest.mark.parametrize("mod", [probe_plot, run_plot])
def test_doctests(mod):
    assert doctest.testmod(mod).failed == 0


def test_plot_command_writes_loss_and_probe_panels(tmp_path, capsys):
    probed = _run(tmp_path, "probed", probe_every=2, probe_exact_every=2)
    plain = _run(tmp_path, "plain")
    assert main(["plot", str(probed)]) == 0
    png = probed / "plot.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == str(png)
    assert main(["plot", str(plain), "--out", str(tmp_path / "figs")]) == 0
    # muon probes: x_min of the NS input, cos_adamw, grad stable rank, grad stable-rank bracket
    # → 1 loss + 4 probe panels on a 3-wide grid; the plain run has the loss panel only
    w_probed, h_probed = _png_size(png)
    w_plain, h_plain = _png_size(tmp_path / "figs" / "plain.png")
    assert w_probed > 2.5 * w_plain and h_probed > 1.8 * h_plain
    assert main(["plot", str(probed), "--out", str(tmp_path / "one.png"), "--layers",
                 "nope.*"]) == 0
    assert (tmp_path / "one.png").stat().st_size > 0


def test_panels_follow_the_rows_and_bad_input_is_refused(tmp_path):
    rows = [{"run": "r", "step": s, "layer": "a.w", "kind": "grad", "metric": "rms", "value": 1.0}
            for s in (1, 2)]
    assert present_panels(rows) == []
    with pytest.raises(ValueError, match="none of the requested"):
        plot_probe_traces(rows, tmp_path / "x.png")
    path = plot_probe_traces(rows, tmp_path / "x.png", panels=[("grad", "rms", "RMS", True)])
    assert path.stat().st_size > 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a matbal run directory"):
        run_plot.plot_run(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        run_plot.plot_run(tmp_path / "missing")
