"""`smgeo batch`: a status per row whatever fails, rows kept one by one and keyed by model +
inputs, stale temporary files swept, clear manifest / option errors, Dask workers.

The kill-and-rerun acceptance test is in test_batch_kill.py."""

import csv
import json
import os
import shutil
import socket
import subprocess
import time

import numpy as np
import pyogrio
import pytest
from pyproj import Transformer

from smgeo_geo.batch import parts_dir, read_manifest, run_batch
from smgeo_geo.cli import main
from smgeo_geo.errors import InputFileError, ManifestError

from .conftest import ORIGIN, UTM_32N


def hint_lonlat(dx_m=40.0, dy_m=40.0):
    """WGS84 lon/lat of the point ``dx_m`` east and ``dy_m`` south of the scene's corner."""
    return Transformer.from_crs(UTM_32N, "EPSG:4326", always_xy=True).transform(ORIGIN[0] + dx_m, ORIGIN[1] - dy_m)


def write_manifest(path, scene, n, broken=(), reference=None, photo=None, hinted=()):
    """``n`` rows clicking the two objects in turn; rows in ``broken`` name a missing photo,
    rows in ``hinted`` search 30 m around a lon/lat (a second window) instead of the whole raster."""
    lon, lat = hint_lonlat()
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["query", "click_x", "click_y", "reference", "lon", "lat", "radius_m"])
        for i in range(n):
            x, y = scene["clicks"][i % 2].tolist()
            name = "missing.png" if i in broken else str(photo or scene["photo"])
            where = [f"{lon:.7f}", f"{lat:.7f}", "30"] if i in hinted else ["", "", ""]
            w.writerow([name, f"{x + i % 5:.2f}", f"{y:.2f}", str(reference or scene["reference"]), *where])


def table(path, layer):
    """A layer as a DataFrame sorted by row, without the ``created`` timestamp."""
    df = pyogrio.read_dataframe(path, layer=layer)
    return df.drop(columns=[c for c in ("created",) if c in df]).sort_values("row").reset_index(drop=True)


def parts(out):
    """Part file name -> (mtime_ns, record) of a batch output."""
    return {p.name: (p.stat().st_mtime_ns, json.loads(p.read_text())) for p in parts_dir(out).glob("[!.]*.json")}


def test_every_row_gets_a_status(scene, tmp_path, monkeypatch, capsys):
    """Missing photo, missing / non-raster reference and a bug in one row: error rows with a
    one-line message; the other rows are located."""
    (tmp_path / "not_a_raster.tif").write_text("hello")
    write_manifest(tmp_path / "m.csv", scene, 7, broken={2})
    lines = (tmp_path / "m.csv").read_text().splitlines()
    lines[5] = lines[5].replace(str(scene["reference"]), str(tmp_path / "nowhere.tif"))
    lines[6] = lines[6].replace(str(scene["reference"]), "not_a_raster.tif")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SMGEO_BATCH_FAULT", "row_error:6")  # row 6 raises RuntimeError, as a bug would
    summary = run_batch(read_manifest(tmp_path / "m.csv"), tmp_path / "out.gpkg", str(scene["checkpoint"]))
    assert summary["ok"] == 3 and summary["error"] == 4 and summary["pending"] == 0
    rows = table(tmp_path / "out.gpkg", "rows")
    assert rows["status"].tolist() == ["ok", "ok", "error", "ok", "error", "error", "error"]
    assert "missing.png not found" in rows["message"][2]
    assert "nowhere.tif" in rows["message"][4] and "not_a_raster.tif" in rows["message"][5]
    assert rows["message"][6] == "internal error: RuntimeError: fault injected in row 6 (SMGEO_BATCH_FAULT)"
    assert all("\n" not in m for m in rows["message"])
    ok = rows["status"] == "ok"  # the locator's answer is in the rows layer too
    assert rows["method"][ok].notna().all() and (rows["uncertainty_m"][ok] > 0).all()
    assert rows["method"][~ok].isna().all() and rows["located_lon"][ok].between(-180, 180).all()
    assert "Traceback" in capsys.readouterr().err  # the bug's traceback goes to stderr
    dets = table(tmp_path / "out.gpkg", "detections")
    assert dets["row"].tolist() == [0, 1, 3]
    assert "32632" in pyogrio.read_info(tmp_path / "out.gpkg", layer="centroids")["crs"]


def test_each_row_is_kept_when_it_finishes(scene, tmp_path):
    """One part per row, on disk before the progress callback sees it; progress counts rows;
    rows sharing a window encode it once."""
    ref = shutil.copy(scene["reference"], tmp_path / "ref.tif")  # a path no earlier test has encoded
    write_manifest(tmp_path / "m.csv", scene, 6, reference=ref, hinted={1, 3, 5})
    out = tmp_path / "out.gpkg"
    seen = []

    def progress(items, todo):
        assert todo == 6
        for records in items:
            assert len(records) == 1 and (parts_dir(out) / f"{records[0]['key']}.json").is_file()
            seen.append(records[0]["row"])
            yield records

    run_batch(read_manifest(tmp_path / "m.csv"), out, str(scene["checkpoint"]), progress=progress)
    assert seen == [0, 2, 4, 1, 3, 5]  # window by window
    records = [rec for _, rec in parts(out).values()]
    assert len(records) == 6 and sum(not r["window_cached"] for r in records) == 2


def test_photo_folder_and_clicks_file(scene, tmp_path):
    (tmp_path / "photos").mkdir()
    shutil.copy(scene["photo"], tmp_path / "photos" / "DJI_0001.png")
    (x0, y0), (x1, y1) = scene["clicks"].tolist()
    (tmp_path / "clicks.csv").write_text(f"image,click_x,click_y\nDJI_0001.png,{x0},{y0}\nDJI_0002.png,{x1},{y1}\n")
    rows = read_manifest(tmp_path / "clicks.csv", str(scene["reference"]), photo_folder=tmp_path / "photos")
    summary = run_batch(rows, tmp_path / "out.gpkg", str(scene["checkpoint"]))
    assert (summary["ok"], summary["error"]) == (1, 1)
    assert "DJI_0002.png not found" in table(tmp_path / "out.gpkg", "rows")["message"][1]
    with pytest.raises(ManifestError, match=r"manifest .*clicks.csv: missing column\(s\) query"):
        read_manifest(tmp_path / "clicks.csv", str(scene["reference"]))  # without --photos: a manifest
    with pytest.raises(InputFileError, match="photo folder .*nowhere not found"):
        read_manifest(tmp_path / "clicks.csv", str(scene["reference"]), photo_folder=tmp_path / "nowhere")


def test_rerun_skips_ok_rows_retries_errors_and_redoes_changed_inputs(scene, tmp_path):
    photo = shutil.copy(scene["photo"], tmp_path / "photo.png")
    write_manifest(tmp_path / "m.csv", scene, 3, broken={2}, photo=photo)
    rows, out, ckpt = read_manifest(tmp_path / "m.csv"), tmp_path / "out.gpkg", str(scene["checkpoint"])

    def run(**kw):
        before = parts(out) if parts_dir(out).is_dir() else {}
        summary = run_batch(rows, out, kw.pop("checkpoint", ckpt), **kw)
        assert len(table(out, "rows")) == 3 and summary["ok"] == 2  # no duplicates, whatever was kept
        after = parts(out)
        rewritten = {n for n, (t, _) in after.items() if n not in before or before[n][0] != t}
        return summary["computed"], rewritten, after

    assert run()[0] == 3
    computed, rewritten, kept = run()
    assert computed == 1 and [kept[n][1]["status"] for n in rewritten] == ["error"]  # only the error row retried
    assert run(top_k=3)[0] == 3
    assert run(method="smgeo")[0] == 3  # another locating method: every row redone
    assert run(method="smgeo", settings={"note": "x"})[0] == 3  # free-form settings are part of the key too
    computed, rewritten, kept = run(checkpoint=None)  # the bundled model: another model id
    assert computed == 3
    ok = [kept[n][1] for n in rewritten if kept[n][1]["status"] == "ok"]
    assert all(r["detection"]["model_id"] == r["inputs"]["model"] for r in ok)
    assert ok[0]["inputs"]["model"].startswith("smgeo_tiny_synth@")
    st = os.stat(photo)
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new time: redone
    assert run()[0] == 3
    assert run()[0] == 1


def test_stale_temps_are_swept_and_other_parts_ignored(scene, tmp_path):
    write_manifest(tmp_path / "m.csv", scene, 3)
    out = tmp_path / "out.gpkg"
    run_batch(read_manifest(tmp_path / "m.csv"), out, str(scene["checkpoint"]))
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [tmp_path / f".out.gpkg.{dead.pid}-0123456789.smgeo-tmp.gpkg",
             tmp_path / f".out.gpkg.{dead.pid}-0123456789.smgeo-tmp.gpkg-journal",
             parts_dir(out) / f".abc.json.{dead.pid}-0123456789.smgeo-tmp.json"]
    live = parts_dir(out) / f".abc.json.{os.getpid()}-0123456789.smgeo-tmp.json"  # a write in progress
    for p in [*stale, live]:
        p.write_text("x")
    write_manifest(tmp_path / "m.csv", scene, 2)  # row 2 leaves the manifest; its part stays
    summary = run_batch(read_manifest(tmp_path / "m.csv"), out, str(scene["checkpoint"]))
    assert summary["computed"] == 0 and summary["ok"] == 2
    assert not any(p.exists() for p in stale) and live.exists()
    assert len(parts(out)) == 3
    assert table(out, "rows")["row"].tolist() == [0, 1] and len(table(out, "detections")) == 2


MANIFEST_CASES = {
    "missing": (None, "manifest {path} not found"),
    "latin1": (b"query,click_x,click_y\nphoto.png,1,2\nph\xf6to.png,1,2\n", "{path} line 3: not UTF-8 text"),
    "bom_latin1": (b"\xef\xbb\xbfquery,click_x,click_y\nph\xf6to.png,1,2\n", "{path} line 2: not UTF-8 text (byte 0xf6)"),
    "empty": (b"", "manifest {path} is empty; expected a header line query, click_x, click_y"),
    "header_only": (b"query,click_x,click_y\n", "manifest {path} has a header but no rows"),
    "missing_column": (b"query,click_x\nphoto.png,1\n", "manifest {path}: missing column(s) click_y"),
    "bad_number": (b"query,click_x,click_y\nphoto.png,abc,3\n", "{path} line 2: click_x must be a number, got 'abc'"),
    "empty_number": (b"query,click_x,click_y\nphoto.png,1,2\nphoto.png,,3\n", "{path} line 3: click_x is empty"),
    "nan": (b"query,click_x,click_y\nphoto.png,nan,3\n", "{path} line 2: click_x must be a finite number"),
    "empty_query": (b"query,click_x,click_y\nphoto.png,1,2\n\n ,1,2\n", "{path} line 4: the query cell is empty"),
}


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_manifest_errors_name_file_and_line(scene, tmp_path, case):
    content, message = MANIFEST_CASES[case]
    path = tmp_path / "m.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ManifestError) as info:
        read_manifest(path, default_reference=str(scene["reference"]))
    assert message.format(path=path) in str(info.value)


def cli_error(capsys, args):
    """Run ``smgeo ARGS``; assert it stops with status 2; return its one stderr line."""
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "\n" not in err
    return err


@pytest.mark.parametrize("extra, message", [
    (["--workers", "0"], "--workers must be a whole number of at least 1, got 0"),
    (["--workers", "-2"], "--workers must be a whole number of at least 1, got -2"),
    (["--top-k", "0"], "top-k must be a whole number from 1 to 100, got 0"),
    (["--out", "{tmp}/folder.gpkg"], "--out {tmp}/folder.gpkg is a folder"),
    (["--out", "{tmp}/nowhere/out.gpkg"], "folder {tmp}/nowhere does not exist"),
    (["--out", "{tmp}/m.csv"], "--out {tmp}/m.csv is the --manifest input"),
    (["--out", "{tmp}/ref.tif"], "--out {tmp}/ref.tif is the reference raster input"),
    (["--out", "{tmp}/out.txt"], "--out {tmp}/out.txt must end in .gpkg"),
])
def test_bad_options_stop_before_any_work(scene, tmp_path, capsys, extra, message):
    shutil.copy(scene["reference"], tmp_path / "ref.tif")
    (tmp_path / "folder.gpkg").mkdir()
    write_manifest(tmp_path / "m.csv", scene, 2, reference=tmp_path / "ref.tif")
    args = ["batch", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out.gpkg"),
            "--checkpoint", str(scene["checkpoint"]), *[a.format(tmp=tmp_path) for a in extra]]
    assert message.format(tmp=tmp_path) in cli_error(capsys, args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.gpkg", "m.csv", "ref.tif"]  # nothing written


def test_unreachable_dask_scheduler_is_named_at_once(scene, tmp_path, capsys):
    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_manifest(tmp_path / "m.csv", scene, 2)
    started = time.monotonic()
    err = cli_error(capsys, ["batch", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o.gpkg"),
                             "--dask", f"tcp://127.0.0.1:{port}"])
    assert time.monotonic() - started < 10
    assert f"--dask tcp://127.0.0.1:{port}: no Dask scheduler answers there" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]  # no empty o.gpkg.parts folder


def test_dask_workers_on_loopback_give_the_same_rows(scene, tmp_path, capsys):
    write_manifest(tmp_path / "m.csv", scene, 6, broken={4})
    environ = dict(os.environ)
    main(["batch", "--manifest", str(tmp_path / "m.csv"), "--checkpoint", str(scene["checkpoint"]),
          "--out", str(tmp_path / "dask.gpkg"), "--workers", "2"])
    assert "5 ok, 1 error(s) of 6 rows" in capsys.readouterr().out
    assert dict(os.environ) == environ  # Dask's OMP_NUM_THREADS=1 for its workers does not stay here
    records = [rec for _, rec in parts(tmp_path / "dask.gpkg").values()]
    assert len(records) == 6
    assert sum(r["window_cached"] is False for r in records) <= 2  # one window, encoded at most once per worker
    run_batch(read_manifest(tmp_path / "m.csv"), tmp_path / "inline.gpkg", str(scene["checkpoint"]))
    a, b = table(tmp_path / "dask.gpkg", "detections"), table(tmp_path / "inline.gpkg", "detections")
    assert a["row"].tolist() == b["row"].tolist() == [0, 1, 2, 3, 5]
    # worker processes may use another number of torch threads: equal up to float rounding
    np.testing.assert_allclose(a[["score", "px_x1", "px_y2"]].to_numpy(), b[["score", "px_x1", "px_y2"]].to_numpy(),
                               rtol=1e-4, atol=1e-3)
    assert table(tmp_path / "dask.gpkg", "rows")["message"].tolist() == table(tmp_path / "inline.gpkg",
                                                                               "rows")["message"].tolist()
