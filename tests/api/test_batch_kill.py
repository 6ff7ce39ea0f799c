"""Acceptance: `smgeo batch` killed (SIGINT, SIGKILL) after the first row, after several rows
and during the GeoPackage write, then rerun, gives the GeoPackage of one clean run; no
temporary file is left and no finished row is computed twice.

The kill points are exact, not timed: the fault-injection hook of smgeo_geo.batch
(SMGEO_BATCH_FAULT / SMGEO_BATCH_FAULT_SIGNAL) makes the process signal itself there.
Every crashed run is a subprocess of `smgeo batch`: SIGINT is handled as Ctrl-C (status 130),
SIGKILL leaves nothing of the process."""

import os
import signal
import subprocess
import sys

import pyogrio
import torch

from smgeo_geo.batch import parts_dir
from smgeo_geo.cli import main

from .test_batch import parts, table, write_manifest


def ok_parts(out):
    """Part file name -> (mtime_ns, bytes) of the ok rows kept so far."""
    return {name: (t, (parts_dir(out) / name).read_bytes()) for name, (t, rec) in parts(out).items()
            if rec["status"] == "ok"}


def leftovers(*folders):
    """Names in ``folders`` that are not final outputs: temporary files and their sidecars."""
    return [p.name for f in folders if f.is_dir() for p in f.iterdir()
            if p.name.startswith(".") or "smgeo-tmp" in p.name or p.name.endswith(("-journal", "-wal", "-shm"))]


def assert_same_geopackage(a, b):
    """Same layers, CRS, attributes (but ``created``) and geometries."""
    layers = sorted(name for name, _ in pyogrio.list_layers(b))
    assert sorted(name for name, _ in pyogrio.list_layers(a)) == layers == ["centroids", "detections", "rows"]
    for layer in layers:
        x, y = table(a, layer), table(b, layer)
        assert pyogrio.read_info(a, layer=layer)["crs"] == pyogrio.read_info(b, layer=layer)["crs"]
        assert x.drop(columns="geometry", errors="ignore").equals(y.drop(columns="geometry", errors="ignore")), layer
        if "geometry" in y:
            assert all(g.equals_exact(h, 1e-9) for g, h in zip(x.geometry, y.geometry)), layer


def test_killed_at_any_point_then_rerun_equals_one_clean_run(scene, tmp_path, capsys, monkeypatch):
    # 8 rows, two windows (rows 0-3 the whole raster, 4-7 a lon/lat circle), row 5 a missing photo
    write_manifest(tmp_path / "m.csv", scene, 8, broken={5}, hinted={4, 5, 6, 7})
    args = ["batch", "--manifest", str(tmp_path / "m.csv"), "--checkpoint", str(scene["checkpoint"])]
    out = tmp_path / "crash.gpkg"

    def killed_run(fault, sig, monkeypatch):
        # every crash runs in its own process: nothing a test before this one left in the pytest
        # process (signal handlers, threads) can change how the signal lands
        env = {**os.environ, "SMGEO_BATCH_FAULT": fault, "SMGEO_BATCH_FAULT_SIGNAL": sig,
               "OMP_NUM_THREADS": str(torch.get_num_threads())}  # same float rounding as this process
        proc = subprocess.run([sys.executable, "-m", "smgeo_geo.cli", *args, "--out", str(out)], env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        # Ctrl-C: smgeo exits with 130; SIGKILL: the process dies of it
        assert proc.returncode == (130 if sig == "INT" else -signal.SIGKILL), proc.stderr
        assert not out.exists()  # never half a GeoPackage
        return ok_parts(out)

    kept = killed_run("after_rows:1", "INT", monkeypatch)  # Ctrl-C after the first row
    assert len(kept) == 1 and leftovers(tmp_path, parts_dir(out)) == []
    now = killed_run("after_rows:3", "KILL", monkeypatch)  # killed after three more rows
    assert len(now) == 4 and kept.items() <= now.items()  # the first row was not redone
    kept = now
    now = killed_run("during_write", "KILL", monkeypatch)  # all rows done, killed with the GeoPackage half written
    assert len(now) == 7 and kept.items() <= now.items()
    assert any(".crash.gpkg." in name for name in leftovers(tmp_path)), "the kill did not land in the write"
    kept = now
    now = killed_run("during_write", "INT", monkeypatch)  # Ctrl-C during the write: its temporary file is removed
    assert now == kept and leftovers(tmp_path, parts_dir(out)) == []

    main([*args, "--out", str(out)])  # the rerun to completion: only the error row is retried
    assert "7 ok, 1 error(s) of 8 rows" in capsys.readouterr().out
    assert ok_parts(out) == kept
    main([*args, "--out", str(tmp_path / "clean.gpkg")])  # one clean run
    assert "(8 computed, 0 kept from earlier runs)" in capsys.readouterr().out
    assert_same_geopackage(out, tmp_path / "clean.gpkg")
    assert leftovers(tmp_path, parts_dir(out), parts_dir(tmp_path / "clean.gpkg")) == []
    assert table(out, "rows")["status"].tolist() == ["ok"] * 5 + ["error"] + ["ok"] * 2
