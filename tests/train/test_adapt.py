"""`smgeo adapt`: self-supervised fine-tuning on the user's area, with a time budget and resume.

The area is generated (``tests/realpairs/scenes.py``: a 400 m orthophoto with coloured roofs and
its DSM); the base model is the bundled one, the budget a few seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from smgeo_geo.checks import model_id
from smgeo_geo.cli import main
from smgeo_model import bundled_checkpoint, load_checkpoint
from smgeo_model.checkpoint import read_tensors

from ..realpairs import scenes

BUDGET_MIN = 0.05  # 3 s of training


def run(argv) -> int:
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code
    return 0


@pytest.fixture(scope="module")
def area(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("area")
    return {"ortho": scenes.write_orthophoto(d / "ortho.tif"), "dsm": scenes.write_dsm(d / "dsm.tif"), "dir": d}


@pytest.fixture(scope="module")
def adapted(area, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("adapt") / "run"
    code = run(["adapt", "--reference", area["ortho"], "--dem", area["dsm"], "--out", out, "--pairs", 20,
                "--minutes", BUDGET_MIN, "--device", "cpu", "--quiet"])
    assert code == 0
    return out


def _state(out: Path) -> dict:
    return torch.load(out / "train" / "train_state.pt", map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_adapt_writes_a_checkpoint_that_differs_from_the_start_and_a_before_after_report(adapted):
    report = json.loads((adapted / "adapt.json").read_text())
    assert report["pairs"]["test"] >= 1 and report["pairs"]["train"] >= 10
    for when in ("before", "after"):
        assert 0.0 <= report[when]["acc@0.5"] <= 1.0 and report[when]["pairs"] == report["pairs"]["test"]
        # the same pairs with the click moved: says whether the model reads the click
        assert 0.0 <= report[when]["moved_click"]["acc@0.5"] <= 1.0
    assert (adapted / "adapt.md").read_text().count("|") > 10
    assert "click moved" in (adapted / "adapt.md").read_text()
    assert (adapted / "adapt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    new, old = load_file(adapted / "adapted.safetensors"), read_tensors(bundled_checkpoint())
    assert new.keys() == old.keys()
    assert any(not torch.equal(new[k], old[k]) for k in new), "fine-tuning changed no weight"
    meta = json.loads((adapted / "adapted.json").read_text())
    assert meta["metadata"]["adapted_from"] == str(bundled_checkpoint())


@pytest.mark.slow
def test_time_budget_stops_training_long_before_the_epoch_limit(adapted):
    state = _state(adapted)
    assert state["elapsed_s"] >= 60 * BUDGET_MIN
    assert int(state["epoch"]) < 50  # MAX_EPOCHS is 10,000: only the budget can have stopped it


@pytest.mark.slow
def test_rerun_resumes_keeps_the_pairs_and_spends_only_the_remaining_budget(adapted, area, capsys):
    manifest = adapted / "data" / "ADAPT" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    before = _state(adapted)
    rendered_s = json.loads((adapted / "adapt.json").read_text())["seconds"]["render"]
    assert rendered_s > 0
    # same budget again: it is spent, so no further training step runs
    code = run(["adapt", "--reference", area["ortho"], "--dem", area["dsm"], "--out", adapted, "--pairs", 20,
                "--minutes", BUDGET_MIN, "--device", "cpu", "--quiet"])
    assert code == 0
    assert manifest.stat().st_mtime_ns == stamp
    assert "reusing the pairs" in capsys.readouterr().out
    assert int(_state(adapted)["epoch"]) == int(before["epoch"])
    # the report keeps the seconds the rendering took, not this call's few
    assert json.loads((adapted / "adapt.json").read_text())["seconds"]["render"] == rendered_s
    # a larger budget continues the same run until the new budget is spent
    budget_s = before["elapsed_s"] + 5.0
    code = run(["adapt", "--reference", area["ortho"], "--dem", area["dsm"], "--out", adapted, "--pairs", 20,
                "--minutes", budget_s / 60, "--device", "cpu", "--quiet"])
    assert code == 0
    after = _state(adapted)
    assert int(after["epoch"]) > int(before["epoch"])
    assert after["elapsed_s"] >= budget_s
    assert "resuming from" in capsys.readouterr().out


@pytest.mark.slow
def test_adapted_checkpoint_locates_through_the_cli(adapted, area, tmp_path):
    assert load_checkpoint(adapted / "adapted.safetensors").config.name == load_checkpoint(
        bundled_checkpoint()).config.name
    photo = next((adapted / "data" / "ADAPT" / "query").glob("*.jpg"))
    out = tmp_path / "hit.geojson"
    code = run(["locate", "--reference", area["ortho"], "--query", photo, "--click", "64,64", "--method", "smgeo",
                "--checkpoint", adapted / "adapted.safetensors", "--out", out])
    assert code == 0
    feature = json.loads(out.read_text())["features"][0]
    assert feature["properties"]["model_id"] == model_id(adapted / "adapted.safetensors") != model_id(
        bundled_checkpoint())


@pytest.mark.parametrize("argv, needle", [
    (["--minutes", "0"], "--minutes"),
    (["--pairs", "5"], "--pairs"),
    (["--region-size", "0.5"], "--region-size"),
    (["--device", "tpu"], "tpu"),
])
def test_bad_options_exit_2_with_one_line(area, tmp_path, capsys, argv, needle):
    code = run(["adapt", "--reference", area["ortho"], "--out", tmp_path / "o", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_copy_of_the_same_inputs_elsewhere_resumes_the_run(adapted, area, tmp_path, capsys):
    """Inputs are compared by content: the area copied to another folder (new paths, new
    modification times) reuses the folder's pairs instead of being refused."""
    import os
    import shutil

    copies = {k: shutil.copy(area[k], tmp_path / Path(area[k]).name) for k in ("ortho", "dsm")}
    for c in copies.values():
        os.utime(c, ns=(1, 1))
    code = run(["adapt", "--reference", copies["ortho"], "--dem", copies["dsm"], "--out", adapted, "--pairs", 20,
                "--minutes", BUDGET_MIN, "--device", "cpu", "--quiet"])
    assert code == 0 and "reusing the pairs" in capsys.readouterr().out


@pytest.mark.slow
def test_other_inputs_in_the_same_folder_are_refused(adapted, area, capsys):
    other = scenes.write_orthophoto(area["dir"] / "other.tif", seed=3)
    code = run(["adapt", "--reference", other, "--out", adapted, "--pairs", 20, "--minutes", BUDGET_MIN])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "other inputs" in err[0]


def _clicks_per_pair(run_dir: Path) -> list[float]:
    lines = (run_dir / "train" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)["train_clicks_per_pair"] for x in lines]


@pytest.mark.slow
def test_match_points_train_on_each_photos_recorded_corners_as_further_clicks(adapted, area, tmp_path):
    assert set(_clicks_per_pair(adapted)) == {1.0}, "without --match-points one click per pair"
    out = tmp_path / "points"
    code = run(["adapt", "--reference", area["ortho"], "--dem", area["dsm"], "--out", out, "--pairs", 20,
                "--minutes", BUDGET_MIN, "--device", "cpu", "--quiet", "--match-points"])
    assert code == 0
    manifest = json.loads((out / "data" / "ADAPT" / "manifest.json").read_text())
    recorded = sum(len(p["points"]) for p in manifest["pairs_info"]) / len(manifest["pairs_info"])
    assert recorded >= 3
    per_pair = _clicks_per_pair(out)
    # the augmentation's crop drops the corners that leave the tile: more than 1, at most 1 + 8
    assert all(2.0 <= v <= 9.0 for v in per_pair), per_pair
    # the same folder without the flag is another recipe: refused, not silently mixed
    code = run(["adapt", "--reference", area["ortho"], "--dem", area["dsm"], "--out", out, "--pairs", 20,
                "--minutes", BUDGET_MIN, "--device", "cpu", "--quiet"])
    assert code == 2


def _raster(path: Path, width: int, height: int, pixel_m: float) -> Path:
    import numpy as np
    import rasterio
    from affine import Affine

    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                       crs=scenes.CRS, transform=Affine(pixel_m, 0, scenes.ORIGIN[0], 0, -pixel_m, scenes.ORIGIN[1])) as f:
        f.write(np.full((3, height, width), 90, np.uint8))
    return path


def test_search_scale_reaches_the_coarsest_window_the_locator_reads_the_area_at(adapted, tmp_path):
    from smgeo_geo.adapt import search_scale_range

    manifest = json.loads((adapted / "data" / "ADAPT" / "manifest.json").read_text())
    extent = manifest["options"]["tile_extent_m"]
    # the widest footprint window: nadir from 150 m, 73.7 deg across a 4:3 photo, 1.5x margin
    half_w = math.tan(math.radians(73.7 / 2))
    widest = 2 * 1.5 * 150 * math.hypot(half_w, 0.75 * half_w)
    dataset = adapted / "data" / "ADAPT"
    # a raster narrower than that window is read whole: the tile shrinks to the raster's width
    side = round((extent / 0.8 + widest) / 2)  # metres: wider than the tiles at 0.8x, narrower than the window
    small = _raster(tmp_path / "small.tif", 2 * side, side, 0.5)
    # ground metres: the UTM grid's scale (0.9996 at the central meridian) counts
    assert search_scale_range(dataset, small) == pytest.approx((extent / side, 1.25), rel=1e-3)
    assert extent / side < 0.8
    # a wide raster: the window stops at the footprint
    wide = _raster(tmp_path / "wide.tif", 1200, 1200, 2.0)  # 2.4 km
    assert search_scale_range(dataset, wide) == pytest.approx((min(0.8, extent / widest), 1.25), rel=1e-6)
    assert search_scale_range(dataset, wide)[0] < search_scale_range(dataset, small)[0]
    # a raster narrower than the tiles: the default range, never a zoom in
    assert search_scale_range(dataset, _raster(tmp_path / "tiny.tif", 10, 10, extent / 20))[0] == 0.8
    report = json.loads((adapted / "adapt.json").read_text())
    assert report["reference_zoom"] == pytest.approx(search_scale_range(dataset, report["options"]["reference"]),
                                                     abs=1e-4)
    # the other recipe in the same folder is refused, not silently mixed
    code = run(["adapt", "--reference", report["options"]["reference"], "--dem", report["options"]["dem"],
                "--out", adapted, "--pairs", 20, "--minutes", BUDGET_MIN, "--quiet", "--tile-scale"])
    assert code == 2


@pytest.mark.slow
def test_an_area_narrower_than_a_footprint_is_scored_at_its_search_scale_too(area, tmp_path):
    """400 m x 200 m: the locator reads it whole (long side 400 m) at the model's input size,
    tiles span 0.8 x 200 m, so the coarsest search scale is 0.4x the tiles'."""
    import rasterio
    from affine import Affine

    strip = tmp_path / "strip.tif"
    with rasterio.open(strip, "w", driver="GTiff", width=scenes.SIZE, height=scenes.SIZE // 2, count=3,
                       dtype="uint8", crs=scenes.CRS,
                       transform=Affine(scenes.RES, 0, scenes.ORIGIN[0], 0, -scenes.RES, scenes.ORIGIN[1])) as f:
        f.write(scenes.texture(0)[: scenes.SIZE // 2].transpose(2, 0, 1))
    out = tmp_path / "run"
    code = run(["adapt", "--reference", strip, "--dem", area["dsm"], "--out", out, "--pairs", 20,
                "--minutes", BUDGET_MIN, "--device", "cpu", "--quiet"])
    assert code == 0
    report = json.loads((out / "adapt.json").read_text())
    zoom = report["searched"]["reference_zoom"]
    assert zoom == pytest.approx(0.4, abs=0.01) and report["reference_zoom"][0] == zoom
    for when in ("before", "after"):
        assert report["searched"][when]["pairs"] == report["pairs"]["test"]
    assert "(the search scale)" in (out / "adapt.md").read_text()


@pytest.mark.slow
def test_region_size_sets_the_truth_boxes_and_is_part_of_the_recipe(adapted, area, tmp_path):
    base = json.loads((adapted / "data" / "ADAPT" / "manifest.json").read_text())
    out = tmp_path / "small_regions"
    code = run(["adapt", "--reference", area["ortho"], "--dem", area["dsm"], "--out", out, "--pairs", 20,
                "--minutes", BUDGET_MIN, "--device", "cpu", "--quiet", "--region-size", 12])
    assert code == 0
    manifest = json.loads((out / "data" / "ADAPT" / "manifest.json").read_text())
    assert manifest["options"]["region_size_m"] == 12.0
    from smgeo_synth.realpairs.dataset import DEFAULT_REGION_M

    assert base["options"]["region_size_m"] == DEFAULT_REGION_M  # adapt's default is the generator's own

    def box_sides_m(run_dir: Path, m: dict) -> list[float]:
        from smgeo_model.data import read_split

        res = m["options"]["ground_resolution_m"]  # tile metres per pixel
        return [max(it.box[2] - it.box[0], it.box[3] - it.box[1]) * res
                for it in read_split(run_dir / "data", "ADAPT", "train", check_images=False)]

    small, default = box_sides_m(out, manifest), box_sides_m(adapted, base)
    assert max(small) <= 12.0 + 1e-6 < min(default)
    # more, closer structures: at least as many targets as with 30 m regions
    assert manifest["targets"]["count"] > base["targets"]["count"]
    code = run(["adapt", "--reference", area["ortho"], "--dem", area["dsm"], "--out", out, "--pairs", 20,
                "--minutes", BUDGET_MIN, "--device", "cpu", "--quiet"])
    assert code == 2, "the default region size in a folder adapted with 12 m regions is another recipe"
