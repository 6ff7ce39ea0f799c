"""``smgeo index build`` and ``smgeo retrieve`` in this process: outputs, and user errors as one
line ``Error: ...`` with exit status 2 and nothing written."""

from __future__ import annotations

import json

import pyogrio
import pytest

from .index_helpers import make_checkpoint, make_corpus, make_image_folder
from ..bad_inputs.conftest import assert_one_error_line, run_cli


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    corpus = make_corpus(root / "corpus")
    ckpt = make_checkpoint(root / "tiny", corpus)
    return {"root": root, "corpus": corpus, "checkpoint": ckpt}


@pytest.fixture(scope="module")
def index(setup, tmp_path_factory):
    from smgeo_geo.cli import main

    out = tmp_path_factory.mktemp("cli_idx") / "idx"
    main(["index", "build", "--corpus", str(setup["corpus"]), "--checkpoint", str(setup["checkpoint"]),
          "--out", str(out)])
    return out


def test_index_build_prints_a_summary(setup, tmp_path, capsys):
    code, out, err = run_cli(["index", "build", "--corpus", setup["corpus"], "--split", "test", "--checkpoint",
                              setup["checkpoint"], "--out", tmp_path / "idx", "--kind", "hnsw"], capsys)
    assert code == 0, err
    assert "indexed" in out and "hnsw index" in out and str(tmp_path / "idx") in out
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert meta["kind"] == "hnsw" and meta["count"] == int(out.split()[1])


def test_index_build_of_an_image_folder_warns_about_unplaced_images(setup, tmp_path, capsys):
    folder = make_image_folder(tmp_path / "images")
    code, out, err = run_cli(["index", "build", "--images", folder, "--checkpoint", setup["checkpoint"],
                              "--out", tmp_path / "idx"], capsys)
    assert code == 0, err
    assert "indexed 3 items (drone 1, ground 1, satellite 1)" in out
    warning = [line for line in err.splitlines() if line.startswith("Warning: UserWarning: skipped 2")]
    assert len(warning) == 1 and "nogps.jpg" in warning[0] and "plain.tif" in warning[0]


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg"])
def test_retrieve_prints_a_table_and_writes_hits(setup, index, tmp_path, capsys, suffix):
    out_path = tmp_path / f"hits{suffix}"
    code, out, err = run_cli(["retrieve", "--text", "a red roof next to a road", "--index", index, "--top-k", "4",
                              "--out", out_path], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["rank", "score", "platform"]
    assert [line.split()[0] for line in lines[1:5]] == ["1", "2", "3", "4"] and lines[5] == f"wrote {out_path}"
    df = pyogrio.read_dataframe(out_path, layer="hits" if suffix == ".gpkg" else None)
    assert df.crs.to_epsg() == 4326 and list(df["rank"]) == [1, 2, 3, 4]
    assert [line.split()[5] for line in lines[1:5]] == list(df["item_id"])
    assert set(df["query"]) == {"a red roof next to a road"}


def test_retrieve_without_out_only_prints(setup, index, capsys):
    code, out, err = run_cli(["retrieve", "--text", "pond", "--index", index], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 1 + min(10, json.loads((index / "index.json").read_text())["count"])


def test_retrieve_ranks_with_place_fusion_unless_told_not_to(setup, index, capsys):
    from smgeo_retrieval.api import Retriever

    retriever = Retriever.open(index)
    text = "a red roof next to a road"
    for flag, fusion in (([], True), (["--no-place-fusion"], False)):
        code, out, err = run_cli(["retrieve", "--text", text, "--index", index, "--top-k", "5", *flag], capsys)
        assert code == 0, err
        rows = [line.split() for line in out.splitlines()[1:]]
        expected = retriever.search(text, top_k=5, place_fusion=fusion)
        assert [r[5] for r in rows] == [h.item_id for h in expected]
        assert [float(r[1]) for r in rows] == pytest.approx([h.score for h in expected], abs=1e-4)
    assert [h.score for h in retriever.search(text, 5)] != [h.score for h in retriever.search(text, 5, place_fusion=False)]


def _refused(args, capsys, names, folder):
    before = sorted(p.name for p in folder.iterdir())
    line = assert_one_error_line(*run_cli(args, capsys), names)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written
    return line


def test_retrieve_user_errors_are_one_line(setup, index, tmp_path, capsys):
    base = ["retrieve", "--index", index, "--text", "a road"]
    out = tmp_path / "hits.geojson"
    _refused(["retrieve", "--index", index, "--text", "  ", "--out", out], capsys, ["text is empty"], tmp_path)
    _refused([*base, "--top-k", "0", "--out", out], capsys, ["top-k", "0"], tmp_path)
    _refused([*base, "--ef-search", "0", "--out", out], capsys, ["--ef-search", "0"], tmp_path)
    _refused([*base, "--out", tmp_path / "hits.shp"], capsys, ["--out", "hits.shp", ".geojson"], tmp_path)
    _refused([*base, "--out", tmp_path / "nowhere" / "h.geojson"], capsys, ["--out", "does not exist"], tmp_path)
    ckpt_json = setup["checkpoint"].with_suffix(".json")
    before = ckpt_json.read_bytes()
    _refused([*base, "--checkpoint", setup["checkpoint"], "--out", ckpt_json], capsys,
             ["--out", "--checkpoint config", "destroy"], tmp_path)
    assert ckpt_json.read_bytes() == before
    _refused(["retrieve", "--index", tmp_path / "missing", "--text", "x"], capsys, ["missing", "not found"], tmp_path)
    other = make_checkpoint(tmp_path / "other", setup["corpus"], seed=5)
    _refused([*base, "--checkpoint", other], capsys, ["other.safetensors", "built with"], tmp_path)
    _refused([*base, "--device", "gpu9"], capsys, ["gpu9"], tmp_path)


def test_retrieve_names_a_corrupt_index(setup, index, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(index, bad)
    (bad / "vectors.faiss").write_bytes(b"\0" * 64)
    _refused(["retrieve", "--index", bad, "--text", "x"], capsys, [str(bad / "vectors.faiss")], tmp_path)
    (bad / "index.json").write_text("{")
    _refused(["retrieve", "--index", bad, "--text", "x"], capsys, ["index.json", "JSON"], tmp_path)


def test_index_build_user_errors_are_one_line(setup, tmp_path, capsys):
    ck = ["--checkpoint", setup["checkpoint"]]
    _refused(["index", "build", *ck, "--out", tmp_path / "i"], capsys, ["--corpus", "--images"], tmp_path)
    _refused(["index", "build", "--images", tmp_path, "--split", "test", *ck, "--out", tmp_path / "i"], capsys,
             ["--split", "--corpus"], tmp_path)
    _refused(["index", "build", "--corpus", setup["corpus"], *ck, "--out", setup["corpus"]], capsys,
             ["--out", str(setup["corpus"])], tmp_path)
    (tmp_path / "notes.txt").write_text("keep")
    _refused(["index", "build", "--corpus", setup["corpus"], *ck, "--out", tmp_path], capsys,
             ["--out", "holds other files"], tmp_path)
    _refused(["index", "build", "--corpus", tmp_path / "nocorpus", *ck, "--out", tmp_path / "i"], capsys,
             ["nocorpus"], tmp_path)
    _refused(["index", "build", "--images", tmp_path / "noimages", *ck, "--out", tmp_path / "i"], capsys,
             ["noimages", "not found"], tmp_path)
    _refused(["index", "build", "--corpus", setup["corpus"], "--checkpoint", tmp_path / "none.safetensors",
              "--out", tmp_path / "i"], capsys, ["none.safetensors", "not found"], tmp_path)
    _refused(["index", "build", "--corpus", setup["corpus"], *ck, "--out", tmp_path / "i", "--kind", "ivf"], capsys,
             ["--kind", "ivf"], tmp_path)
    assert not (tmp_path / "i").exists()
