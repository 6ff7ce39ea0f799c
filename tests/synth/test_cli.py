"""``smgeo synth`` through the real console entry point."""

from __future__ import annotations

import os

import pytest

from smgeo_geo.cli import main
from smgeo_model.data import read_split

ARGS = ["--pairs", "3", "--seed", "5", "--reference-size", "256", "--query-size", "128", "--quiet", "--no-geotiff"]


def run(argv):
    """main() returns on success and exits with a status on errors."""
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code
    return 0


def test_synth_writes_a_dataset_and_refuses_to_overwrite(tmp_path, capsys):
    assert run(["synth", "--out", str(tmp_path), "--name", "SYN", *ARGS]) == 0
    out = capsys.readouterr().out
    assert "wrote 3 pairs" in out and "SYN" in out
    cores = min(3, len(os.sched_getaffinity(0)))  # by default every core this process may use
    assert f"{cores} process" in out
    assert sum(len(read_split(tmp_path, "SYN", s)) for s in ("train", "val", "test")) == 3
    assert not list((tmp_path / "SYN" / "satellite").glob("*.tif"))  # --no-geotiff
    before = (tmp_path / "SYN" / "SYN_train.pth").read_bytes()

    assert run(["synth", "--out", str(tmp_path), "--name", "SYN", *ARGS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "exists and is not empty; pass --overwrite" in err and "Traceback" not in err

    assert run(["synth", "--out", str(tmp_path), "--name", "SYN", "--overwrite", *ARGS]) == 0
    assert (tmp_path / "SYN" / "SYN_train.pth").read_bytes() == before


@pytest.mark.parametrize("bad, message", [
    (["--query-size", "big"], "--query-size must be N or HxW"),
    (["--splits", "0.5,0.5"], "--splits must be three fractions"),
    (["--reference-size", "10"], "reference size must be"),
    (["--epsg", "4326"], "EPSG 4326 is not one of the supported UTM zones"),
])
def test_user_errors_are_one_line(tmp_path, capsys, bad, message):
    assert run(["synth", "--out", str(tmp_path), "--pairs", "1", "--quiet", *bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and message in err and len(err.splitlines()) == 1


def test_help_has_an_example(capsys):
    assert run(["synth", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example:" in out and "smgeo synth --out data --pairs 2000" in out
