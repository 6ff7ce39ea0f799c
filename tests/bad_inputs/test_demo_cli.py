"""`smgeo demo` with a bad --out, device or checkpoint: one `Error:` line, exit status 2, no
folder created, no file written, the bundled demo data and model untouched."""

from __future__ import annotations

import os

import pytest

from smgeo_geo.cli.demo import demo_folder
from smgeo_model import bundled_checkpoint

from .conftest import assert_one_error_line, copy_checkpoint, run_cli, snapshot


@pytest.fixture(scope="module")
def bundled():
    """Snapshots of the demo data and the bundled model, to compare after each case."""
    folders = [demo_folder(), bundled_checkpoint().parent]
    return folders, [snapshot(f) for f in folders]


def refused(tmp_path, capsys, bundled, args, names, not_created=None) -> str:
    before = snapshot(tmp_path)
    line = assert_one_error_line(*run_cli(["demo", *args], capsys), names)
    assert snapshot(tmp_path) == before  # nothing written, no folder made, no temporary file
    if not_created is not None:
        assert not not_created.exists()
    folders, snaps = bundled
    assert [snapshot(f) for f in folders] == snaps
    return line


def test_out_is_a_file(tmp_path, capsys, bundled):
    (tmp_path / "taken").write_text("keep me")
    refused(tmp_path, capsys, bundled, ["--out", tmp_path / "taken"], ["--out", "taken", "is a file"])


def test_out_below_a_file(tmp_path, capsys, bundled):
    (tmp_path / "taken").write_text("keep me")
    refused(tmp_path, capsys, bundled, ["--out", tmp_path / "taken" / "sub"], ["--out", "cannot be made"])


def test_out_holds_a_folder_where_an_output_goes(tmp_path, capsys, bundled):
    (tmp_path / "out" / "demo_result.gpkg").mkdir(parents=True)
    refused(tmp_path, capsys, bundled, ["--out", tmp_path / "out"], ["demo_result.gpkg", "is a folder"])


def test_out_not_writable(tmp_path, capsys, bundled):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        target = locked / "demo"
        if os.access(locked, os.W_OK):  # root ignores permissions: use a folder the kernel refuses
            target = "/proc/sys/smgeo_demo"
            if os.access("/proc/sys", os.W_OK):
                pytest.skip("no unwritable folder on this machine")
        refused(tmp_path, capsys, bundled, ["--out", target], ["--out", "not writable"])
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("device", ["gpu", "cuda:7", "nonsense"])
def test_bad_device(tmp_path, capsys, bundled, device):
    new = tmp_path / "new"
    refused(tmp_path, capsys, bundled, ["--out", new, "--device", device], [repr(device)], not_created=new)


def test_bad_checkpoint_creates_no_folder(tmp_path, capsys, bundled):
    stem = copy_checkpoint(tmp_path, "edited", lambda d: d["config"].update(head_dim="64"))
    new = tmp_path / "new" / "deeper"
    refused(tmp_path, capsys, bundled, ["--out", new, "--checkpoint", stem],
            ["edited.json", "field head_dim", "'64'"], not_created=tmp_path / "new")
