"""`smgeo batch`: status per row, crash + rerun equals a clean run, Dask workers."""

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyogrio

from smgeo_geo.batch import read_manifest, run_batch
from smgeo_geo.cli import main


def write_manifest(path, scene, n, broken=()):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["query", "click_x", "click_y", "reference"])
        for i in range(n):
            x, y = scene["clicks"][i % 2].tolist()
            photo = "missing.png" if i in broken else str(scene["photo"])
            w.writerow([photo, f"{x + i % 5:.2f}", f"{y:.2f}", str(scene["reference"])])


def table(path, layer):
    df = pyogrio.read_dataframe(path, layer=layer)
    return df.drop(columns=[c for c in ("created",) if c in df]).sort_values("row").reset_index(drop=True)


def test_every_row_gets_a_status(scene, tmp_path):
    write_manifest(tmp_path / "m.csv", scene, 4, broken={2})
    summary = run_batch(read_manifest(tmp_path / "m.csv"), tmp_path / "out.gpkg", str(scene["checkpoint"]))
    assert summary["ok"] == 3 and summary["error"] == 1
    rows = table(tmp_path / "out.gpkg", "rows")
    assert rows["status"].tolist() == ["ok", "ok", "error", "ok"]
    assert "missing.png not found" in rows["message"][2]
    dets = table(tmp_path / "out.gpkg", "detections")
    assert dets["row"].tolist() == [0, 1, 3]
    assert "32632" in pyogrio.read_info(tmp_path / "out.gpkg", layer="centroids")["crs"]


def test_killed_midway_then_rerun_equals_one_clean_run(scene, tmp_path):
    n = 60
    write_manifest(tmp_path / "m.csv", scene, n)
    cmd = [sys.executable, "-m", "smgeo_geo.cli", "batch", "--manifest", str(tmp_path / "m.csv"),
           "--checkpoint", str(scene["checkpoint"])]
    parts = tmp_path / "crash.gpkg.parts"
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "crash.gpkg")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(parts.glob("*.json"))) < 16:  # parts land one chunk (16 rows) at a time
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(parts.glob("*.json")))
    assert 0 < done_before < n, "the kill did not land midway"
    assert not (tmp_path / "crash.gpkg").exists()  # nothing half-written
    assert subprocess.run(cmd + ["--out", str(tmp_path / "crash.gpkg")], capture_output=True).returncode == 0
    assert subprocess.run(cmd + ["--out", str(tmp_path / "clean.gpkg")], capture_output=True).returncode == 0
    for layer in ("detections", "rows"):
        crashed, clean = table(tmp_path / "crash.gpkg", layer), table(tmp_path / "clean.gpkg", layer)
        assert len(crashed) == n
        assert crashed.drop(columns="geometry", errors="ignore").equals(clean.drop(columns="geometry", errors="ignore"))
        if "geometry" in crashed:
            assert all(a.equals_exact(b, 1e-9) for a, b in zip(crashed.geometry, clean.geometry))


def test_dask_workers_on_loopback_give_the_same_rows(scene, tmp_path, capsys):
    write_manifest(tmp_path / "m.csv", scene, 6)
    main(["batch", "--manifest", str(tmp_path / "m.csv"), "--checkpoint", str(scene["checkpoint"]),
          "--out", str(tmp_path / "dask.gpkg"), "--workers", "2"])
    assert "6 ok, 0 error(s) of 6 rows" in capsys.readouterr().out
    run_batch(read_manifest(tmp_path / "m.csv"), tmp_path / "inline.gpkg", str(scene["checkpoint"]))
    a, b = table(tmp_path / "dask.gpkg", "detections"), table(tmp_path / "inline.gpkg", "detections")
    assert a["row"].tolist() == b["row"].tolist()
    # worker processes may use another number of torch threads: equal up to float rounding
    np.testing.assert_allclose(a[["score", "px_x1", "px_y2"]].to_numpy(), b[["score", "px_x1", "px_y2"]].to_numpy(),
                               rtol=1e-4, atol=1e-3)


def test_manifest_errors_name_file_and_line(scene, tmp_path):
    (tmp_path / "bad.csv").write_text("query,click_x,click_y\nphoto.png,abc,3\n")
    try:
        read_manifest(tmp_path / "bad.csv", default_reference=str(scene["reference"]))
    except Exception as exc:  # noqa: BLE001
        assert "bad.csv line 2: click_x must be a number, got 'abc'" in str(exc)
    else:
        raise AssertionError("no error for a non-numeric click")
