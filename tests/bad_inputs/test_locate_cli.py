"""`smgeo locate` with bad inputs: one `Error:` line naming the file or field, exit status 2,
no traceback, nothing written, inputs byte-identical.

Cases marked *cheap* run with a checkpoint that does not exist: their own error must come
first, which proves they are refused before the model is loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import LOCAL_CS, assert_one_error_line, copy_checkpoint, run_cli, snapshot

NO_MODEL = "no_such_model"  # the checkpoint of cheap cases: loading it would be an error of its own

# name -> (option changes (None removes an option), the strings the Error line must hold, cheap)
CASES = {
    # rasters
    "missing reference": ({"--reference": "{dir}/missing.tif"}, ["missing.tif", "no such file"], True),
    "reference is text": ({"--reference": "{text_tif}"}, ["text.tif", "cannot open as a raster"], True),
    "reference is a folder": ({"--reference": "{dir}"}, ["cannot open as a raster"], True),
    "complex pixels": ({"--reference": "{complex}"}, ["complex.tif", "complex64", "expected"], True),
    "zero pixel size": ({"--reference": "{zero_pixel}"}, ["zero_pixel.tif", "degenerate geotransform"], True),
    "singular geotransform": ({"--reference": "{singular}"}, ["singular.tif", "degenerate geotransform"], True),
    "NaN geotransform": ({"--reference": "{nan_transform}"}, ["nan_transform.tif", "degenerate"], True),
    "latitude 95": ({"--reference": "{lat95}"}, ["lat95.tif", "lat -90..90"], True),
    "local engineering CRS": ({"--reference": "{local_cs}"}, ["local_cs.tif", "WGS84"], True),
    "no georeferencing": ({"--reference": "{no_georef}"}, ["no_georef.tif", "no geotransform"], True),
    "no CRS": ({"--reference": "{no_crs}"}, ["no_crs.tif", "no CRS"], True),
    "band out of range": ({"--bands": "5"}, ["ref.tif", "bands (5,)", "1..3"], True),
    "two bands": ({"--bands": "1,2"}, ["ref.tif", "1 or 3 band"], True),
    "bands not numbers": ({"--bands": "r,g,b"}, ["--bands"], True),
    "all nodata": ({"--reference": "{all_nodata}"}, ["all_nodata.tif", "no valid pixels"], False),
    "all NaN": ({"--reference": "{all_nan}"}, ["all_nan.tif", "no valid pixels"], False),
    # photos
    "missing photo": ({"--query": "{dir}/missing.jpg"}, ["missing.jpg", "not found"], True),
    "decompression bomb": ({"--query": "{bomb}"}, ["bomb.png", "400 megapixels", "160 megapixel limit"], True),
    "photo over the limit": ({"--query": "{big}"}, ["big.png", "13000x13000", "160 megapixel limit"], True),
    "truncated photo": ({"--query": "{truncated}"}, ["truncated.jpg", "cannot be read as an image"], True),
    "empty photo": ({"--query": "{empty}"}, ["empty.jpg", "cannot be read as an image"], True),
    "text as photo": ({"--query": "{not_image}"}, ["notes.jpg", "cannot be read as an image"], True),
    "folder as photo": ({"--query": "{folder_photo}"}, ["folder.jpg", "not a file"], True),
    # clicks and options
    "click outside": ({"--click": "500,20"}, ["click (500, 20)", "outside the 128x96 photo"], True),
    "click negative": ({"--click": "-1,20"}, ["outside the 128x96 photo"], True),
    "click not numbers": ({"--click": "a,b"}, ["click must be X,Y"], True),
    "click one number": ({"--click": "12"}, ["click must be X,Y"], True),
    "click NaN": ({"--click": "nan,nan"}, ["click (nan, nan)"], True),
    "top-k 0": ({"--top-k": "0"}, ["top-k", "1 to 100", "got 0"], True),
    "top-k -1": ({"--top-k": "-1"}, ["top-k", "got -1"], True),
    "top-k abc": ({"--top-k": "abc"}, ["--top-k", "'abc'"], True),
    "device gpu": ({"--device": "gpu"}, ["'gpu'", "not a device"], True),
    "device cuda:7": ({"--device": "cuda:7"}, ["'cuda:7'"], True),
    "device nonsense": ({"--device": "nonsense"}, ["'nonsense'"], True),
    "bbox-crs local engineering": ({"--bbox": "0,0,10,10", "--bbox-crs": LOCAL_CS},
                                   ["--bbox-crs", "WGS84"], True),
    "bbox-crs unknown": ({"--bbox": "0,0,10,10", "--bbox-crs": "EPSG:99999"}, ["--bbox-crs", "EPSG:99999"], True),
    "bbox latitude 95": ({"--bbox": "10,89,11,95"}, ["--bbox", "lat -90..90"], True),
    "bbox not numbers": ({"--bbox": "1,2,x,4"}, ["--bbox"], True),
    "bbox empty": ({"--bbox": "5,5,1,1"}, ["--bbox", "minx < maxx"], True),
    "center latitude 95": ({"--center": "10,95", "--radius": "100"}, ["lat=95", "-90..90"], True),
    "radius negative": ({"--center": "14.0,45.0", "--radius": "-5"}, ["radius", "positive"], True),
    "two windows": ({"--search": True, "--photo-gps": True}, ["--photo-gps", "--search"], True),
    # outputs
    "heatmap overwrites reference": ({"--heatmap": "{ref}"}, ["--heatmap", "ref.tif", "--reference input"], True),
    "out overwrites query": ({"--out": "{dir}/photo.geojson", "--query": "{dir}/photo.geojson"},
                             ["--out", "photo.geojson"], True),
    "out overwrites checkpoint config": ({"--out": "{dir}/my.model.json", "--checkpoint": "{dotted_model}"},
                                         ["--out", "my.model.json", "--checkpoint config"], True),
    "out equals heatmap": ({"--out": "{out}/same.tif", "--heatmap": "{out}/same.tif"}, ["--out"], True),
    "out in missing folder": ({"--out": "{out}/missing/r.geojson"}, ["--out", "does not exist"], True),
    "out is a folder": ({"--out": "{out}"}, ["--out", "directory"], True),
    "out wrong suffix": ({"--out": "{out}/r.txt"}, ["--out", ".geojson"], True),
    # checkpoints
    "checkpoint missing": ({"--checkpoint": "{dir}/nothing.safetensors"}, ["nothing.json", "not found"], False),
}

# checkpoint JSON edits: name -> (edit of the JSON document, strings the Error line must hold)
CHECKPOINT_EDITS = {
    "embed_dim string": (lambda d: d["config"].update(embed_dim="32"), ["field embed_dim", "whole number", "'32'"]),
    "embed_dim bool": (lambda d: d["config"].update(embed_dim=True), ["field embed_dim", "True"]),
    "embed_dim zero": (lambda d: d["config"].update(embed_dim=0), ["field embed_dim", "got 0"]),
    "depths too short": (lambda d: d["config"].update(depths=[2, 2, 2]), ["field depths", "4 whole numbers"]),
    "heads negative": (lambda d: d["config"].update(num_heads=[1, 2, -4, 8]), ["field num_heads"]),
    "mlp_ratio NaN": (lambda d: d["config"].update(mlp_ratio=float("nan")), ["field mlp_ratio", "nan"]),
    "drop_path inf": (lambda d: d["config"].update(drop_path_rate=float("inf")), ["field drop_path_rate", "inf"]),
    "query_size 100": (lambda d: d["config"].update(query_size=[100, 128]), ["field query_size", "multiples of 32"]),
    "grid of three": (lambda d: d["config"].update(moe_grid=[4, 4, 4]), ["field moe_grid", "2 whole numbers"]),
    "placement unknown": (lambda d: d["config"].update(moe_placement=["none", "odd", "even", "even"]),
                          ["field moe_placement", "'odd'"]),
    "click_in_backbone string": (lambda d: d["config"].update(click_in_backbone="yes"),
                                 ["field click_in_backbone", "true or false"]),
    "top_k above experts": (lambda d: d["config"].update(moe_top_k=9), ["field moe_top_k", "moe_num_experts"]),
    "fusion groups zero": (lambda d: d["config"].update(fusion_groups=0), ["field fusion_groups"]),
    "unknown field": (lambda d: d["config"].update(colour="red"), ["unknown config field", "colour"]),
    "config a list": (lambda d: d.update(config=[1, 2]), ["config must be an object"]),
    "version 2": (lambda d: d.update(version=2), ["field version", "got 2"]),
    "no format": (lambda d: d.pop("format"), ["not an SMGeo checkpoint config"]),
}


def base_args(p: dict, out) -> dict:
    return {"--reference": str(p["ref"]), "--query": str(p["photo"]), "--click": "20,20",
            "--out": str(out / "r.geojson")}


def argv(options: dict) -> list[str]:
    args = ["locate"]
    for key, value in options.items():
        if value is True:
            args.append(key)
        elif value is not None:
            args += [key, value]
    return args


def check_refused(inputs, tmp_path, capsys, changes: dict, names: list[str], cheap: bool) -> str:
    out = tmp_path / "out"
    out.mkdir()
    fill = {**{k: str(v) for k, v in inputs.items()}, "out": str(out)}
    options = base_args(inputs, out)
    if cheap and "--checkpoint" not in changes:
        options["--checkpoint"] = str(inputs["dir"] / NO_MODEL)
    options.update({k: v.format(**fill) if isinstance(v, str) else v for k, v in changes.items()})
    before = snapshot(inputs["dir"])
    line = assert_one_error_line(*run_cli(argv(options), capsys), names)
    if cheap:
        assert NO_MODEL not in line, "refused only when the model was loaded"
    assert snapshot(inputs["dir"]) == before  # inputs untouched, no temporary file beside them
    assert snapshot(out) == {}  # nothing written
    return line


def test_the_base_case_works(inputs, tmp_path, capsys):
    """The options every case changes one thing of locate an object and write the result."""
    (tmp_path / "out").mkdir()
    code, out, err = run_cli(argv(base_args(inputs, tmp_path / "out")), capsys)
    assert code == 0, err
    assert out.startswith("lon ") and list(snapshot(tmp_path / "out")) == ["r.geojson"]


@pytest.mark.parametrize("changes,names,cheap", CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused(inputs, tmp_path, capsys, changes, names, cheap):
    check_refused(inputs, tmp_path, capsys, changes, names, cheap)


@pytest.mark.parametrize("edit,names", CHECKPOINT_EDITS.values(), ids=CHECKPOINT_EDITS.keys())
def test_bad_checkpoint_json_names_file_and_field(inputs, tmp_path, capsys, edit, names):
    stem = copy_checkpoint(tmp_path, "edited", edit)
    before = snapshot(tmp_path)
    line = check_refused(inputs, tmp_path, capsys, {"--checkpoint": str(stem)}, ["edited.json", *names], False)
    assert snapshot(tmp_path) == {**before, "out": "<dir>"}, line


def test_unwritable_output_folder(inputs, tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root ignores permissions: use a folder the kernel refuses
            folder = "/proc/sys"
            if os.access(folder, os.W_OK):
                pytest.skip("no unwritable folder on this machine")
        check_refused(inputs, tmp_path, capsys, {"--out": f"{folder}/r.geojson"}, ["--out", "not writable"], True)
    finally:
        (tmp_path / "locked").chmod(0o700)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(click=st.text(max_size=12), top_k=st.text(max_size=4), bbox=st.one_of(st.none(), st.text(max_size=16)),
       bands=st.one_of(st.none(), st.text(max_size=6)))
def test_any_option_text_gives_one_error_line(inputs, tmp_path_factory, capsys, click, top_k, bbox, bands):
    """Whatever the option values, with a checkpoint that does not exist the command ends in
    exactly one Error line (the options' own, or the checkpoint's) and writes nothing."""
    tmp = tmp_path_factory.mktemp("fuzz")
    options = {**base_args(inputs, tmp), "--click": click, "--top-k": top_k, "--bbox": bbox, "--bands": bands,
               "--checkpoint": str(inputs["dir"] / NO_MODEL)}
    before = snapshot(inputs["dir"])
    code, out, err = run_cli(argv({k: v for k, v in options.items() if v not in (None, "")}), capsys)
    assert_one_error_line(code, out, err, [])
    assert snapshot(inputs["dir"]) == before and snapshot(tmp) == {}


REAL_PROCESS = """
import sys
from smgeo_geo.cli import main
for args in {cases!r}:
    try:
        main(args)
    except SystemExit as exc:
        print(f"=== exit {{exc.code}}", file=sys.stderr, flush=True)
"""


def test_real_process_prints_one_line_and_no_warning(inputs, tmp_path):
    """The same promise on a real process's stderr (file descriptor 2, where PROJ, GDAL and
    Pillow could print from C), with every Python warning switched on."""
    cases = {"bomb": ("--query", ["bomb.png", "megapixel limit"]),
             "local_cs": ("--reference", ["local_cs.tif", "WGS84"])}
    args = [argv({**base_args(inputs, tmp_path), option: str(inputs[key])}) for key, (option, _) in cases.items()]
    env = {**os.environ, "PYTHONWARNINGS": "always"}
    done = subprocess.run([sys.executable, "-c", REAL_PROCESS.format(cases=args)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0 and done.stdout == "", done.stderr
    lines = done.stderr.splitlines()  # per run: its Error line, then the marker with its exit status
    assert len(lines) == 2 * len(cases), done.stderr
    for i, (_, names) in enumerate(cases.values()):
        assert lines[2 * i + 1] == "=== exit 2"
        assert_one_error_line(2, "", lines[2 * i] + "\n", names)
    assert list(tmp_path.iterdir()) == []
