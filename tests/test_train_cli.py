"""``matbal train`` in-process: every bad option — also those found while the run is set up —
exits with status 2 and names the option; option spellings; a default never fails a valid run."""
import json

import pytest

from matbal.train.cli import build_compare_parser, build_train_parser, main
from matbal.train.config import TrainConfig, parse_config

FAST = ["--model", "mlp", "--lr", "0.01", "--quiet", "--tensorboard", "off", "--threads", "1",
        "--steps", "2"]


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(FAST + argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("argv,flag,words", [
    (["--lr", "1e300"], "--lr", ["1e+300", "overflows"]),
    (["--adamw-lr", "1e300"], "--adamw-lr", ["adamw_lr"]),
    (["--optimizer-kwargs", '{"ns_steps": -1}'], "--optimizer-kwargs", ["ns_steps=-1"]),
    (["--optimizer-kwargs", '{"bogus": 1}'], "--optimizer-kwargs", ["no keyword 'bogus'"]),
    (["--optimizer", "adamw", "--optimizer-kwargs", '{"betas": [2, 0.9]}'],
     "--optimizer-kwargs", ["betas"]),
])
def test_optimizer_options_refused_at_setup_exit_2_naming_the_option(tmp_path, capsys, argv,
                                                                     flag, words):
    err = run_cli(argv + ["--out-dir", str(tmp_path)], capsys)
    assert f"argument {flag}: " in err
    for w in words:
        assert w in err


def test_unusable_out_dir_exits_2(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    err = run_cli(["--out-dir", str(tmp_path / "file" / "runs")], capsys)
    assert "argument --out-dir: cannot create the run directory" in err


def test_bad_resume_exits_2(tmp_path, capsys):
    err = run_cli(["--out-dir", str(tmp_path), "--resume", str(tmp_path / "nonexistent")], capsys)
    assert "argument --resume: no checkpoint at" in err and "nonexistent" in err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    err = run_cli(["--out-dir", str(tmp_path), "--resume", str(tmp_path / "junk.pt")], capsys)
    assert "argument --resume: cannot read checkpoint" in err
    # a real checkpoint of another trajectory (other lr)
    assert main(FAST + ["--out-dir", str(tmp_path), "--run-name", "a", "--lr", "0.01"]) == 0
    capsys.readouterr()
    err = run_cli(["--out-dir", str(tmp_path), "--run-name", "b", "--lr", "0.02",
                   "--resume", str(tmp_path / "a")], capsys)
    assert "argument --resume: cannot resume: the config differs" in err and "lr" in err


@pytest.mark.parametrize("build", [build_train_parser, build_compare_parser])
def test_one_spelling_listed_both_accepted_and_abbreviations_unambiguous(build):
    parser = build()
    assert parser.parse_args(["--out", "x"]).out_dir == "x"  # was "ambiguous"
    assert parser.parse_args(["--out_dir", "y"]).out_dir == "y"
    assert parser.parse_args(["--out-dir=z"]).out_dir == "z"
    assert parser.parse_args(["--batch_size=16"]).batch_size == 16
    assert parser.parse_args(["--run-name", "my_run"]).run_name == "my_run"  # values untouched
    text = parser.format_help()
    assert "--out-dir" in text and "--out_dir" not in text and "--batch_size" not in text


def test_default_warmup_follows_a_short_run_and_explicit_values_are_checked(tmp_path, capsys):
    assert parse_config(["--steps", "10"]).warmup() == 10  # default warmup 20 > 10 steps
    assert TrainConfig().warmup() == 20 and TrainConfig(steps=7, warmup_steps=3).warmup() == 3
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(steps=10, warmup_steps=11)
    assert main(FAST + ["--out-dir", str(tmp_path), "--run-name", "w"]) == 0
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    assert cfg["steps"] == 2 and cfg["warmup_steps"] == 2  # the value used is recorded
    err = run_cli(["--warmup-steps", "3", "--out-dir", str(tmp_path)], capsys)
    assert "warmup_steps" in err
