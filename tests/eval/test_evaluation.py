"""Evaluation numbers against a hand-computed example, and the `smgeo evaluate` command."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from smgeo_geo.cli import main
from smgeo_geo.evaluation import evaluate, scale_class
from smgeo_model import build_model, save_checkpoint
from smgeo_model.data.cvogl import write_split

NAME = "HAND_DroneAerial"
TILE = "500000_5000000_512_32633.jpg"  # 512 m across; written at 256 px -> 2 m per pixel


def _write_images(root, n_queries):
    rng = np.random.default_rng(0)
    (root / NAME / "query").mkdir(parents=True)
    (root / NAME / "satellite").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(root / NAME / "satellite" / TILE)
    for i in range(n_queries):
        Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(root / NAME / "query" / f"q{i}.jpg")


@pytest.fixture()
def hand_dataset(tmp_path):
    """Train boxes are all 64 x 64 px of a 256 px tile, so the centre prior is [96, 96, 160, 160]."""
    _write_images(tmp_path, 3)
    train = [(0, "q0.jpg", TILE, 0, (10, 10), [0, 0, 64, 64], 0, "building"),
             (1, "q1.jpg", TILE, 0, (20, 20), [100, 50, 164, 114], 0, "building")]
    test = [(0, "q0.jpg", TILE, 0, (10, 10), [96, 96, 160, 160], 0, "building"),
            (1, "q1.jpg", TILE, 0, (20, 20), [128, 128, 192, 192], 0, "sport_basketball"),
            (2, "q2.jpg", TILE, 0, (30, 30), [0, 0, 200, 240], 0, "sport_basketball")]
    write_split(tmp_path, NAME, "train", train)
    write_split(tmp_path, NAME, "test", test)
    return tmp_path


def test_centre_prior_scores_equal_the_hand_computed_example(hand_dataset):
    model = build_model(build_model("tiny").config.replace(reference_size=(256, 256), query_size=(128, 128)))
    report = evaluate(model, hand_dataset, NAME, "test", methods=("centre_prior",))
    m = report["methods"]["centre_prior"]
    # prior [96,96,160,160]: IoU 1 with pair 0; 32*32 / (2*64*64 - 32*32) = 1/7 with pair 1;
    # pair 2 [0,0,200,240]: 64*64 / (200*240) = 4096 / 48000
    ious = [1.0, 1 / 7, 4096 / 48000]
    assert m["acc@0.25"] == pytest.approx(1 / 3)
    assert m["acc@0.5"] == pytest.approx(1 / 3)
    assert m["mIoU"] == pytest.approx(sum(ious) / 3)
    assert m["per_class"]["sport_basketball"]["mIoU"] == pytest.approx((ious[1] + ious[2]) / 2)
    # centre errors at 2 m/px: 0, 32*sqrt(2) px, |(100,120) - (128,128)| px
    errs = sorted([0.0, 2 * 32 * math.sqrt(2), 2 * math.hypot(28, 8)])
    assert m["centre_error"]["median_m"] == pytest.approx(errs[1])
    assert m["centre_error"]["count"] == 3
    # scales in CVOGL pixels (0.5 m): 64 px at 2 m = 256 CVOGL px -> small; 200x240 px -> 800x960 -> large
    assert m["per_scale"]["small"]["count"] == 2 and m["per_scale"]["large"]["count"] == 1


def test_scale_classes_follow_fig_11():
    assert scale_class((149.0, 149.0)) == "small"  # 298 x 298 CVOGL px
    assert scale_class((200.0, 200.0)) == "medium"  # 400 x 400
    assert scale_class((256.0, 256.0)) == "medium"  # 512 x 512 exactly
    assert scale_class((300.0, 300.0)) == "large"


def test_model_scores_match_an_independent_computation(hand_dataset):
    torch.manual_seed(0)
    model = build_model(build_model("tiny").config.replace(reference_size=(256, 256), query_size=(128, 128))).eval()
    report = evaluate(model, hand_dataset, NAME, "test", methods=("smgeo", "shuffled_query", "moved_click"))
    from smgeo_model import box_iou, decode_boxes
    from smgeo_model.data import CVOGLDataset

    ds = CVOGLDataset(hand_dataset, NAME, "test", reference_size=256, query_size=128)
    ious, moved_ious = [], []
    with torch.inference_mode():
        for i in range(len(ds)):
            s = ds[i]
            # the moved click: half the 128 px photo away along each axis, wrapped into the photo
            moved = torch.tensor([(s["click"][0] + 64) % 128, (s["click"][1] + 64) % 128])
            for click, into in ((s["click"], ious), (moved, moved_ious)):
                out = model(s["query"][None], click[None], s["reference"][None])
                b, _ = decode_boxes(out["heatmap"], out["boxes"], (256, 256), top_k=1)
                into.append(box_iou(b[:, 0], s["box"][None])[0].item())
    assert report["methods"]["smgeo"]["mIoU"] == pytest.approx(sum(ious) / 3, abs=1e-5)
    assert report["methods"]["moved_click"]["mIoU"] == pytest.approx(sum(moved_ious) / 3, abs=1e-5)
    assert set(report["methods"]) == {"smgeo", "shuffled_query", "moved_click"}


def test_reference_zoom_scores_smgeo_on_tiles_shrunk_about_their_centre(hand_dataset):
    """As at a coarser search scale: the tile at half size in the middle of a black canvas; the
    scores stay in the tile's own pixels and metres."""
    torch.manual_seed(0)
    model = build_model(build_model("tiny").config.replace(reference_size=(256, 256), query_size=(128, 128))).eval()
    report = evaluate(model, hand_dataset, NAME, "test", methods=("smgeo",), reference_zoom=0.5)
    from smgeo_model import box_iou, decode_boxes
    from smgeo_model.data import CVOGLDataset

    ds = CVOGLDataset(hand_dataset, NAME, "test", reference_size=256, query_size=128)
    ious, errors = [], []
    with torch.inference_mode():
        for i in range(len(ds)):
            s = ds[i]
            small = torch.nn.functional.interpolate(s["reference"][None], size=(128, 128), mode="bilinear",
                                                    align_corners=False, antialias=True)
            canvas = torch.zeros(1, 3, 256, 256)
            canvas[..., 64:192, 64:192] = small
            out = model(s["query"][None], s["click"][None], canvas)
            b, _ = decode_boxes(out["heatmap"], out["boxes"], (256, 256), top_k=1)
            ious.append(box_iou(b[:, 0], s["box"][None] / 2 + 64)[0].item())  # IoU: the same in either frame
            centre = ((b[0, 0, :2] + b[0, 0, 2:]) / 2 - 64) * 2  # tile px
            errors.append(2.0 * float(torch.linalg.norm(centre - (s["box"][:2] + s["box"][2:]) / 2)))  # 2 m/px
    m = report["methods"]["smgeo"]
    assert m["mIoU"] == pytest.approx(sum(ious) / 3, abs=1e-5)
    assert m["centre_error"]["median_m"] == pytest.approx(float(np.median(errors)), abs=1e-3)
    with pytest.raises(ValueError, match="reference_zoom"):
        evaluate(model, hand_dataset, NAME, "test", methods=("smgeo",), reference_zoom=1.5)


def test_evaluate_command_writes_json_markdown_and_figures(hand_dataset, tmp_path):
    model = build_model(build_model("tiny").config.replace(reference_size=(256, 256), query_size=(128, 128)))
    save_checkpoint(model, tmp_path / "ckpt" / "m")
    out = tmp_path / "eval" / "test.json"
    main(["evaluate", "--data-root", str(hand_dataset), "--data-name", NAME, "--checkpoint",
          str(tmp_path / "ckpt" / "m.safetensors"), "--json", str(out)])
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"smgeo", "centre_prior", "shuffled_query", "moved_click", "classical", "auto"}
    for entry in report["methods"].values():
        assert {"acc@0.25", "acc@0.5", "mIoU", "per_class", "per_scale"} <= set(entry)
        assert 0 <= entry["acc@0.5"] <= entry["acc@0.25"] <= 1
    assert report["methods"]["classical"]["failures"] == 3  # random noise images cannot be matched
    # nothing to register and no metadata: the locator's answer is SMGeo's own box
    assert report["methods"]["auto"]["mIoU"] == pytest.approx(report["methods"]["smgeo"]["mIoU"], abs=0.02)
    assert out.with_suffix(".md").read_text().startswith("| method |")
    for suffix in ("_bars.png", "_heatmaps.png", "_experts.png"):
        png = out.with_name("test" + suffix)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_dataset_is_one_clear_error(tmp_path, capsys):
    model = build_model("tiny")
    save_checkpoint(model, tmp_path / "m")
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--data-root", str(tmp_path / "nowhere"), "--data-name", NAME, "--checkpoint",
              str(tmp_path / "m.safetensors"), "--json", str(tmp_path / "x.json")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: dataset folder") and "nowhere" in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("extra, needle", [(["--device", "gpu0"], "gpu0"), (["--json", "."], "directory"),
                                           (["--methods", "smgeo,best"], "best"),
                                           (["--reference-zoom", "0"], "--reference-zoom")])
def test_bad_device_or_output_is_refused_before_scoring(hand_dataset, capsys, extra, needle):
    argv = ["evaluate", "--data-root", str(hand_dataset), "--data-name", NAME, "--json", "x.json", *extra]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and needle in err[0]


def test_evaluate_command_scores_at_a_reference_zoom_as_the_api_does(hand_dataset, tmp_path):
    torch.manual_seed(0)
    model = build_model(build_model("tiny").config.replace(reference_size=(256, 256), query_size=(128, 128))).eval()
    save_checkpoint(model, tmp_path / "m")
    out = tmp_path / "zoomed.json"
    main(["evaluate", "--data-root", str(hand_dataset), "--data-name", NAME, "--checkpoint",
          str(tmp_path / "m.safetensors"), "--json", str(out), "--methods", "smgeo", "--reference-zoom", "0.5",
          "--no-figures"])
    report = json.loads(out.read_text())
    assert report["data"]["reference_zoom"] == 0.5
    api = evaluate(model, hand_dataset, NAME, "test", methods=("smgeo",), reference_zoom=0.5)
    assert report["methods"]["smgeo"]["mIoU"] == pytest.approx(api["methods"]["smgeo"]["mIoU"], abs=1e-6)
    whole = evaluate(model, hand_dataset, NAME, "test", methods=("smgeo",))
    assert whole["data"]["reference_zoom"] == 1.0
