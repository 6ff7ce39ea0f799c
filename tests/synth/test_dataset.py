"""The synthetic dataset generator: determinism, CVOGL layout, georeferencing, class mix."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from smgeo_geo.errors import OutputError, SMGeoError
from smgeo_synth import CLASS_WEIGHTS, CLASSES, generate_dataset
from smgeo_synth.dataset import pair_classes, split_assignment
from smgeo_model.data import read_split, satellite_georef

NAME = "SYNTH_DroneAerial"
SMALL = dict(reference_size=256, query_size=128, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, pairs=5, seed=11, **SMALL)
    return root


def test_same_seed_same_bytes_whatever_the_workers(dataset, tmp_path):
    generate_dataset(tmp_path / "again", pairs=5, seed=11, workers=2, **SMALL)
    a, b = _files(dataset / NAME), _files(tmp_path / "again" / NAME)
    assert sorted(a) == sorted(b)
    assert len([k for k in a if k.endswith(".jpg")]) == 10 and len([k for k in a if k.endswith(".tif")]) == 5
    differing = [k for k in a if a[k] != b[k]]
    assert differing == []


def test_different_seed_different_data(dataset, tmp_path):
    generate_dataset(tmp_path, pairs=5, seed=12, geotiff=False, **SMALL)
    a, b = _files(dataset / NAME), _files(tmp_path / NAME)
    queries_a = {k: v for k, v in a.items() if k.startswith("query/")}
    queries_b = {k: v for k, v in b.items() if k.startswith("query/")}
    assert sorted(queries_a) == sorted(queries_b)  # same names (index based) ...
    assert all(queries_a[k] != queries_b[k] for k in queries_a)  # ... other pictures
    assert {k for k in a if k.startswith("satellite/")} != {k for k in b if k.startswith("satellite/")}
    assert a[f"{NAME}_train.pth"] != b.get(f"{NAME}_train.pth", b"")


def test_layout_is_cvogl_and_readable(dataset):
    folder = dataset / NAME
    assert (folder / "query").is_dir() and (folder / "satellite").is_dir()
    manifest = json.loads((folder / "manifest.json").read_text())
    epsg = int(manifest["crs"].split(":")[1])
    items = {s: read_split(dataset, NAME, s) for s in ("train", "val", "test")}  # validates bounds + files
    assert {s: len(v) for s, v in items.items()} == manifest["counts"] == {"train": 3, "val": 1, "test": 1}
    assert sum(manifest["counts"].values()) == 5
    seen = Counter()
    for split, its in items.items():
        for it in its:
            seen[it.class_name] += 1
            assert it.class_name in CLASSES
            with Image.open(it.query_path) as q, Image.open(it.satellite_path) as s:
                assert q.size == (128, 128) and s.size == (256, 256)
            x1, y1, x2, y2 = it.box
            assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256
            assert 0 <= it.click[0] <= 128 and 0 <= it.click[1] <= 128
            code, e, n, extent = satellite_georef(it.satellite_path.name)
            assert code == epsg and extent == 512.0
    assert seen == sum((Counter(c) for c in manifest["classes"].values()), Counter())


def test_geotiff_is_in_the_utm_crs_of_the_file_name(dataset):
    sats = sorted((dataset / NAME / "satellite").glob("*.jpg"))
    assert len(sats) == 5
    for jpg in sats:
        epsg, e, n, extent = satellite_georef(jpg.name)
        assert 32601 <= epsg <= 32660  # WGS 84 / UTM north
        with rasterio.open(jpg.with_suffix(".tif")) as src:
            assert src.crs.to_epsg() == epsg
            assert (src.width, src.height, src.count) == (256, 256, 3)
            t = src.transform
            assert t.a == pytest.approx(extent / 256) and t.e == pytest.approx(-extent / 256) and t.b == t.d == 0
            assert (t.c, t.f) == pytest.approx((e - extent / 2, n + extent / 2))
            left, bottom, right, top = src.bounds
            assert ((left + right) / 2, (bottom + top) / 2) == pytest.approx((e, n))
            assert src.read(1, window=((0, 1), (0, 1))).shape == (1, 1)
            tif = src.read().transpose(1, 2, 0).astype(float)
        with Image.open(jpg) as im:
            assert np.abs(np.asarray(im, dtype=float) - tif).mean() < 1.5  # the same JPEG (two decoders)


def test_class_mix_follows_the_weights():
    names = pair_classes(0, 4000, CLASS_WEIGHTS)
    freq = Counter(names)
    total = sum(CLASS_WEIGHTS.values())
    for c, w in CLASS_WEIGHTS.items():
        assert abs(freq[c] / 4000 - w / total) < 0.025, (c, freq[c])
    only = pair_classes(0, 50, {"sport_tennis": 1.0, "leisure_stadium": 0.0})
    assert set(only) == {"sport_tennis"}


def test_splits_are_complete_and_seeded():
    labels = split_assignment(3, 101, (0.8, 0.1, 0.1))
    assert Counter(labels) == {"train": 81, "val": 10, "test": 10}
    assert labels == split_assignment(3, 101, (0.8, 0.1, 0.1)) and labels != split_assignment(4, 101, (0.8, 0.1, 0.1))
    assert Counter(split_assignment(0, 3, (0.8, 0.1, 0.1))) == {"train": 1, "val": 1, "test": 1}


def test_refuses_to_overwrite_and_validates_options(dataset, tmp_path):
    with pytest.raises(OutputError, match="exists and is not empty; pass --overwrite"):
        generate_dataset(dataset, pairs=1, seed=0, **SMALL)
    foreign = tmp_path / NAME
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="did not write.*notes.txt"):
        generate_dataset(tmp_path, pairs=1, seed=0, overwrite=True, **SMALL)
    assert (foreign / "notes.txt").read_text() == "mine"
    for bad in (dict(pairs=0), dict(pairs=1, difficulty="extreme"), dict(pairs=1, query_size=8),
                dict(pairs=1, splits=(1, -1, 0)), dict(pairs=1, name="../x")):
        kwargs = {**SMALL, "seed": 0, **bad}
        with pytest.raises(SMGeoError):
            generate_dataset(tmp_path / "new", **kwargs)
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").rglob("*.pth"))
