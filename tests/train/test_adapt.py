"""`smgeo adapt`: self-supervised fine-tuning on the user's area, with a time budget and resume.

The area is generated (``tests/realpairs/scenes.py``: a 400 m orthophoto with coloured roofs and
its DSM); the base model is the bundled one, the budget a few seconds.
"""

from __future__ import annotations

import json
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
    assert (adapted / "adapt.md").read_text().count("|") > 10
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
    # same budget again: it is spent, so no further training step runs
    code = run(["adapt", "--reference", area["ortho"], "--dem", area["dsm"], "--out", adapted, "--pairs", 20,
                "--minutes", BUDGET_MIN, "--device", "cpu", "--quiet"])
    assert code == 0
    assert manifest.stat().st_mtime_ns == stamp
    assert "reusing the pairs" in capsys.readouterr().out
    assert int(_state(adapted)["epoch"]) == int(before["epoch"])
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
