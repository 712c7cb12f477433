"""Command line: bad numbers are argparse errors naming the option and the value, and every
output path (--json, --plot, --save) is checked before any work starts."""

from __future__ import annotations

import json
import os

import pytest

from eventgrad.experiments import cli

COMMANDS = {"forward": "_forward", "demo": "_demo", "crosscheck": "_crosscheck",
            "figure1": "_figure1", "xor": "_xor", "timing": "_timing", "yinyang": "_yinyang"}
WRITES = {"forward": ("json",), "demo": ("json",), "crosscheck": ("json", "plot"),
          "figure1": ("json", "plot"), "xor": ("json", "plot", "save"),
          "timing": ("json", "plot", "save"), "yinyang": ("json", "plot", "save")}

CLIP = "must be a finite number >= 0 (0: no clipping), got"


@pytest.fixture
def no_work(monkeypatch):
    """Every command's body replaced by one that fails: the checks must come first."""
    def started(args):
        raise AssertionError(f"{args.command}: the work started")
    for name in COMMANDS.values():
        monkeypatch.setattr(cli, name, started)


def _exit(argv, capsys) -> tuple[object, str]:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    return e.value.code, str(e.value.code) + capsys.readouterr().err


def _refused(argv, capsys) -> tuple[int, str]:
    """A check before the work refused ``argv``: exit status 2 and the one line it wrote."""
    code, text = _exit(argv, capsys)
    assert code == 2
    err = text[1:].strip()
    assert "\n" not in err and "Traceback" not in err
    return code, err


@pytest.mark.parametrize("argv,option,shown", [
    (["forward", "--batch", "0"], "--batch", "must be >= 1, got 0"),
    (["forward", "--batch", "-3"], "--batch", "must be >= 1, got -3"),
    (["forward", "--batch", "2.5"], "--batch", "must be an integer, got '2.5'"),
    (["forward", "--hidden", "0"], "--hidden", "must be >= 1, got 0"),
    (["forward", "--t-max", "0"], "--t-max", "must be finite and > 0 ms, got 0"),
    (["forward", "--t-max", "nan"], "--t-max", "must be finite and > 0 ms, got nan"),
    (["xor", "--hidden", "0"], "--hidden", "must be >= 1, got 0"),
    (["xor", "--clip", "-1"], "--clip", f"{CLIP} -1"),
    (["yinyang", "--clip", "inf"], "--clip", f"{CLIP} inf"),
    (["timing", "--epochs", "-1"], "--epochs", "must be >= 0, got -1"),
    (["yinyang", "--batch-size", "0"], "--batch-size", "must be >= 1, got 0"),
    (["yinyang", "--hidden", "-5"], "--hidden", "must be >= 1, got -5"),
])
def test_bad_numbers_are_readable_argparse_errors(argv, option, shown, capsys, no_work):
    """Before: `eventgrad forward --batch 0` ended in a traceback from simulate (and
    earlier numpy's 'need at least one array to stack')."""
    code, text = _exit(argv, capsys)
    assert code == 2
    assert f"eventgrad {argv[0]}: error: argument {option}: {shown}" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_output_path_is_checked_before_the_work(command, tmp_path, capsys, no_work):
    """Before: --json / --plot / --save were first opened after training, so a bad path lost
    the whole run."""
    for opt in WRITES[command]:
        ext = {"json": ".json", "plot": ".png", "save": ""}[opt]
        missing = str(tmp_path / "no" / f"out{ext}")
        _, err = _refused([command, f"--{opt}", missing], capsys)
        assert err == f"eventgrad {command}: error: --{opt} {missing}" + (
            f" ({missing}.npz)" if opt == "save" else "") + \
            f": its directory {tmp_path / 'no'} does not exist"
        if opt != "save":
            _, err = _refused([command, f"--{opt}", str(tmp_path)], capsys)
            assert err == f"eventgrad {command}: error: --{opt} {tmp_path}: is a directory"
        (tmp_path / "file").write_text("")
        inside = str(tmp_path / "file" / f"x{ext}")
        _, err = _refused([command, f"--{opt}", inside], capsys)
        assert err.endswith(f": {tmp_path / 'file'} is not a directory")


def test_output_collisions_and_plot_format(tmp_path, capsys, no_work):
    a = str(tmp_path / "a")
    _, err = _refused(["xor", "--json", a + ".json", "--save", a], capsys)
    assert err == (f"eventgrad xor: error: --json {a}.json would be overwritten by --save {a} "
                   f"(both write {a}.json); choose another name")
    _, err = _refused(["crosscheck", "--json", a, "--plot", a], capsys)
    assert "would be overwritten by --plot" in err
    _, err = _refused(["yinyang", "--plot", a + ".xyz"], capsys)
    assert err.startswith(f"eventgrad yinyang: error: --plot {a}.xyz: format 'xyz' is not one "
                          f"matplotlib writes (") and "png" in err


def test_unwritable_directory_is_refused(tmp_path, capsys, no_work, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.geteuid() == 0:   # root may write anyway: let os.access answer as for a user
        access = os.access
        monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(ro)
                            else access(p, m))
    try:
        _, err = _refused(["xor", "--json", str(ro / "x.json")], capsys)
    finally:
        ro.chmod(0o700)
    assert err == (f"eventgrad xor: error: --json {ro / 'x.json'}: its directory {ro} is "
                   "not writable")


def test_clip_zero_is_off_as_in_train(tmp_path):
    """--clip 0 and clip_grad_norm=0 (or None) mean the same: no clipping."""
    for clip, expected in (("0", None), ("0.05", 0.05)):
        out = tmp_path / f"c{clip}.json"
        assert cli.main(["xor", "--epochs", "1", "--clip", clip, "--no-progress", "--json",
                         str(out)]) == 0
        assert json.loads(out.read_text())["config"]["clip_grad_norm"] == expected


@pytest.mark.parametrize("argv", [["forward", "--batch", "2"],
                                  ["xor", "--epochs", "1", "--no-progress"]])
def test_json_records_the_environment(argv, tmp_path):
    """Every JSON a command writes says where it ran
    (eventgrad.experiments.provenance.environment)."""
    import numpy as np

    import eventgrad

    path = tmp_path / "out.json"
    assert cli.main(argv + ["--json", str(path)]) in (0, None)
    env = json.loads(path.read_text())["environment"]
    assert env["packages"]["eventgrad"] == eventgrad.__version__
    assert env["packages"]["numpy"] == np.__version__
    assert env["eventgrad_threads"] == eventgrad.get_num_threads()


def test_checkpoint_and_resume_on_the_command_line(tmp_path, capsys):
    """``--checkpoint DIR`` then ``--resume`` with more epochs ends where one run of that
    many epochs ends (the saved JSON's history, bit for bit); bad uses are refused first."""
    base = ["xor", "--epochs", "2", "--no-progress", "--batch-size", "2", "--seed", "1"]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    cli.main(base[:2] + ["3"] + base[3:] + ["--json", str(a)])
    cli.main(base + ["--checkpoint", str(tmp_path / "ck")])
    assert (tmp_path / "ck" / "eventprop" / "checkpoint.pt").exists()
    cli.main(base[:2] + ["3"] + base[3:] + ["--checkpoint", str(tmp_path / "ck"), "--resume",
                                            "--json", str(b)])
    ha, hb = (json.loads(p.read_text())["history"] for p in (a, b))
    assert [h["loss"] for h in ha] == [h["loss"] for h in hb] and len(ha) == 4
    _, msg = _exit(base + ["--resume"], capsys)
    assert "--resume needs --checkpoint DIR" in msg
    (tmp_path / "file").write_text("x")
    _, msg = _exit(base + ["--checkpoint", str(tmp_path / "file")], capsys)
    assert "not a directory" in msg


def test_library_errors_are_one_line_with_status_2(capsys):
    """A ValueError from the library (here the loss's check of --silent-slope) is one line on
    standard error and exit status 2; --traceback lets it through whole."""
    code = cli.main(["timing", "--silent-slope", "-1", "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "eventgrad: error: silent_slope must be finite and >= 0, got -1.0\n"
    with pytest.raises(ValueError, match="silent_slope must be finite"):
        cli.main(["timing", "--silent-slope", "-1", "--epochs", "1", "--no-progress",
                  "--traceback"])


def test_version_and_python_dash_m():
    """``eventgrad --version`` and ``python -m eventgrad`` (the same command line)."""
    import subprocess
    import sys

    import eventgrad

    for argv in ([sys.executable, "-m", "eventgrad", "--version"],):
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        assert out.strip() == f"eventgrad {eventgrad.__version__}"
    out = subprocess.run([sys.executable, "-m", "eventgrad", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("usage: eventgrad") and "yinyang" in out


def test_every_option_has_help_and_shows_its_default():
    """Each option of each command has help text, and ``--help`` states every default that
    is not None / off."""
    import argparse

    for c in cli.COMMANDS:
        p = argparse.ArgumentParser(formatter_class=cli._DefaultsHelp)
        c.add_args(p)
        text = p.format_help()
        for a in p._actions:
            if not a.option_strings or a.dest == "help":
                continue
            assert a.help, (c.name, a.option_strings)
            if a.default is not None and a.default is not False:
                assert "default" in cli._DefaultsHelp("x")._get_help_string(a), (c.name, a.dest)
        assert "``" not in text, c.name


def test_surrogate_options_with_eventprop_are_an_error(capsys):
    """--dt, --surrogate, --scale with --method eventprop would be ignored: an error instead
    (timing --plot trains the surrogate path too, so there they apply)."""
    for opt, value in (("--dt", "0.5"), ("--surrogate", "sigmoid"), ("--scale", "5")):
        _, msg = _exit(["xor", opt, value, "--epochs", "0", "--no-progress"], capsys)
        assert f"{opt} applies to --method surrogate only" in msg
    assert cli.main(["xor", "--method", "surrogate", "--dt", "0.5", "--epochs", "0",
                     "--no-progress"]) == 0
