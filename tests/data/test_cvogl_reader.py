"""The CVOGL reader against hand-written CVOGL-layout folders (torch.save'd lists of 8-tuples)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from smgeo_model.data import CVOGLDataset, DatasetError, read_split, satellite_georef, write_split
from smgeo_model.errors import SMGeoModelError

NAME = "CVOGL_DroneAerial"
SAT = "547433_5280574_512_32610.jpg"
SAT2 = "547945_5280574_512_32610.jpg"


def _jpeg(path, w, h, colour):
    Image.new("RGB", (w, h), colour).save(path, quality=95)


def make_dataset(root, items_by_split=None):
    """root/CVOGL_DroneAerial/{query,satellite}/ with two queries (32x32) and two tiles (64x64)."""
    folder = root / NAME
    (folder / "query").mkdir(parents=True)
    (folder / "satellite").mkdir()
    _jpeg(folder / "query" / "0001.jpg", 32, 32, (200, 30, 30))
    _jpeg(folder / "query" / "0002.jpg", 32, 24, (30, 200, 30))
    _jpeg(folder / "satellite" / SAT, 64, 64, (30, 30, 200))
    _jpeg(folder / "satellite" / SAT2, 64, 48, (200, 200, 30))
    if items_by_split is None:
        items_by_split = {
            "train": [(0, "0001.jpg", SAT, 90.0, (10.5, 20), [4, 8, 40.5, 60], 812.5, "building"),
                      (1, "0002.jpg", SAT2, 0, [31, 2.25], (0, 0, 64, 48), 0, "sport_tennis")],
            "val": [(2, "0002.jpg", SAT, "north", (1, 1), [1, 2, 3, 4], 1.0, "junction_roundabout")],
            "test": [],
        }
    for split, items in items_by_split.items():
        torch.save(items, folder / f"{NAME}_{split}.pth")
    return folder


def test_round_trip_reads_every_field(tmp_path):
    folder = make_dataset(tmp_path)
    train = read_split(tmp_path, NAME, "train")
    assert len(train) == 2
    a, b = train
    assert a.index == 0 and b.index == 1
    assert a.query_path == folder / "query" / "0001.jpg" and a.satellite_path == folder / "satellite" / SAT
    assert a.click == (10.5, 20.0) and isinstance(a.click[1], float)
    assert a.box == (4.0, 8.0, 40.5, 60.0)
    assert a.class_name == "building"
    assert b.query_path.name == "0002.jpg" and b.satellite_path.name == SAT2
    assert b.click == (31.0, 2.25) and b.box == (0.0, 0.0, 64.0, 48.0) and b.class_name == "sport_tennis"
    val = read_split(tmp_path, NAME, "val")
    assert [(v.class_name, v.box) for v in val] == [("junction_roundabout", (1.0, 2.0, 3.0, 4.0))]
    assert read_split(tmp_path, NAME, "test") == []


def test_dataset_samples_and_resizing(tmp_path):
    make_dataset(tmp_path)
    s = CVOGLDataset(tmp_path, NAME, "train")[0]
    assert s["query"].shape == (3, 32, 32) and s["reference"].shape == (3, 64, 64)
    assert s["query"].dtype == torch.float32 and 0 <= float(s["query"].min()) and float(s["query"].max()) <= 1
    # RGB order: the query is red, the reference blue
    assert s["query"][0].mean() > 0.6 and s["query"][1].mean() < 0.3
    assert s["reference"][2].mean() > 0.6 and s["reference"][0].mean() < 0.3
    assert s["click"].tolist() == [10.5, 20.0] and s["box"].tolist() == [4.0, 8.0, 40.5, 60.0]
    assert (s["class_name"], s["query_name"], s["satellite_name"], s["index"]) == ("building", "0001.jpg", SAT, 0)
    ds = CVOGLDataset(tmp_path, NAME, "train", reference_size=(32, 128), query_size=16,
                      transform=lambda d: {**d, "flag": True})
    r = ds[1]
    assert r["reference"].shape == (3, 32, 128) and r["query"].shape == (3, 16, 16) and r["flag"]
    # satellite 64x48 -> 128x32: x * 2, y * 2/3; query 32x24 -> 16x16: x / 2, y * 2/3
    assert torch.allclose(r["box"], torch.tensor([0.0, 0.0, 128.0, 32.0]))
    assert torch.allclose(r["click"], torch.tensor([15.5, 1.5]))


def test_write_split_round_trip(tmp_path):
    make_dataset(tmp_path)
    items = [(7, "0001.jpg", SAT, 12.5, (3, 4), np.array([1, 2, 30, 40]), np.float32(300.0), "leisure_stadium")]
    path = write_split(tmp_path, NAME, "test", items)
    assert path == tmp_path / NAME / f"{NAME}_test.pth"
    raw = torch.load(path, weights_only=True)
    assert raw == [(7, "0001.jpg", SAT, 12.5, (3.0, 4.0), [1.0, 2.0, 30.0, 40.0], 300.0, "leisure_stadium")]
    assert isinstance(raw[0], tuple) and len(raw[0]) == 8
    (it,) = read_split(tmp_path, NAME, "test")
    assert it.box == (1.0, 2.0, 30.0, 40.0) and it.click == (3.0, 4.0)


def _bad(tmp_path, item):
    make_dataset(tmp_path, {"train": [(0, "0001.jpg", SAT, 0, (1, 1), [1, 1, 5, 5], 0, "building"), item]})
    with pytest.raises(DatasetError) as err:
        read_split(tmp_path, NAME, "train")
    msg = str(err.value)
    assert f"{NAME}_train.pth item 1" in msg, msg
    return msg


def test_missing_folder_and_list(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder .*CVOGL_DroneAerial does not exist"):
        read_split(tmp_path, NAME, "train")
    make_dataset(tmp_path, {"train": []})
    with pytest.raises(DatasetError, match=f"{NAME}_val.pth does not exist"):
        read_split(tmp_path, NAME, "val")


def test_bad_tuple_length(tmp_path):
    assert "8-tuple" in _bad(tmp_path, (0, "0001.jpg", SAT, 0, (1, 1), [1, 1, 5, 5], "building"))


def test_click_not_numeric(tmp_path):
    msg = _bad(tmp_path, (1, "0001.jpg", SAT, 0, ("a", 3), [1, 1, 5, 5], 0, "building"))
    assert "click" in msg and "number" in msg


def test_malformed_box(tmp_path):
    assert "box" in _bad(tmp_path, (1, "0001.jpg", SAT, 0, (1, 1), [1, 1, 5], 0, "building"))
    assert "not ordered" in _bad(tmp_path / "b", (1, "0001.jpg", SAT, 0, (1, 1), [9, 1, 5, 5], 0, "building"))


def test_missing_image(tmp_path):
    msg = _bad(tmp_path, (1, "0001.jpg", "1_2_512_32610.jpg", 0, (1, 1), [1, 1, 5, 5], 0, "building"))
    assert "satellite image" in msg and "1_2_512_32610.jpg does not exist" in msg


def test_box_out_of_bounds(tmp_path):
    msg = _bad(tmp_path, (1, "0001.jpg", SAT2, 0, (1, 1), [10, 10, 60, 49], 0, "building"))  # SAT2 is 64x48
    assert "outside satellite image" in msg and "64x48" in msg


def test_click_out_of_bounds(tmp_path):
    assert "outside query image" in _bad(tmp_path, (1, "0002.jpg", SAT, 0, (5, 25), [1, 1, 5, 5], 0, "building"))


class _Exploit:
    """Pickles to a call of os.system that would write a marker file when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    make_dataset(tmp_path, {"train": []})
    torch.save([(0, "0001.jpg", SAT, _Exploit(marker), (1, 1), [1, 1, 5, 5], 0, "building")],
               tmp_path / NAME / f"{NAME}_train.pth")
    with pytest.raises(DatasetError, match="weights_only"):
        read_split(tmp_path, NAME, "train")
    assert not marker.exists()


def test_satellite_georef():
    assert satellite_georef("547433_5280574_512_32610.jpg") == (32610, 547433.0, 5280574.0, 512.0)
    assert satellite_georef("/x/y/500000.5_4000000_128_32633.tif") == (32633, 500000.5, 4000000.0, 128.0)
    for bad in ("tile.jpg", "547433_5280574_512.jpg", "a_b_c_d.jpg", "1_2_3_32.jpg"):
        with pytest.raises(DatasetError, match="not of the CVOGL form"):
            satellite_georef(bad)
    assert issubclass(DatasetError, SMGeoModelError) and issubclass(DatasetError, ValueError)


def test_joined_datasets_read_as_one_in_order_with_unique_indexes(tmp_path):
    """Several dataset folders trained on together (generated towns + real-texture pairs): each item
    keeps its own folder's images, in the order given, renumbered so augmentation seeds differ."""
    make_dataset(tmp_path)
    other = tmp_path / "REAL_DroneAerial"
    (tmp_path / NAME).rename(other)
    for split in ("train", "val", "test"):
        (other / f"{NAME}_{split}.pth").rename(other / f"REAL_DroneAerial_{split}.pth")
    make_dataset(tmp_path)
    ds = CVOGLDataset.joined(tmp_path, [NAME, "REAL_DroneAerial"], "train", query_size=16)
    assert [it.index for it in ds.items] == [0, 1, 2, 3]
    assert [it.query_path.parent.parent.name for it in ds.items] == [NAME, NAME, "REAL_DroneAerial", "REAL_DroneAerial"]
    assert ds[2]["index"] == 2 and ds[2]["query"].shape == (3, 16, 16)
    assert torch.equal(ds[2]["click"], CVOGLDataset(tmp_path, "REAL_DroneAerial", "train", query_size=16)[0]["click"])
    assert len(CVOGLDataset.joined(tmp_path, [NAME, "REAL_DroneAerial"], "val")) == 2
    with pytest.raises(DatasetError, match="MISSING"):
        CVOGLDataset.joined(tmp_path, [NAME, "MISSING"], "train")
