"""The vector index folder (``smgeo_retrieval.index``): pure vectors, no model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smgeo_geo.errors import InputFileError, OptionError, OutputError
from smgeo_retrieval import index as vindex
from smgeo_retrieval.index import IndexItem, VectorIndex

MODEL = {"checkpoint": "/nowhere/tiny.safetensors", "model_id": "tiny@0123456789"}


def unit_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def items(n: int) -> list[IndexItem]:
    platforms = ("satellite", "drone", "ground")
    return [IndexItem(f"i{i:06d}", platforms[i % 3], f"/data/{i}.jpg", 8.0 + i * 1e-4, 47.0,
                      "POLYGON ((8 47, 8.001 47, 8.001 47.001, 8 47.001, 8 47))" if i % 3 == 0 else None)
            for i in range(n)]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_round_trip_gives_the_same_results(tmp_path, kind):
    vecs = unit_vectors(600, 24)
    idx = VectorIndex.build(vecs, items(600), MODEL, kind=kind)
    queries = unit_vectors(20, 24, seed=1)
    scores, ids = idx.search(queries, 7)
    idx.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "items.jsonl", "vectors.faiss"]
    meta = json.loads((tmp_path / "index.json").read_text())
    assert meta["format"] == "smgeo-retrieval-index" and meta["version"] == 1
    assert (meta["dim"], meta["count"], meta["kind"], meta["model"]) == (24, 600, kind, MODEL)
    loaded = VectorIndex.load(tmp_path)
    assert (loaded.kind, loaded.dim, loaded.count, loaded.items, loaded.model) == (kind, 24, 600, idx.items, MODEL)
    scores2, ids2 = loaded.search(queries, 7)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_allclose(scores, scores2, rtol=1e-6)
    assert scores.shape == ids.shape == (20, 7) and scores.dtype == np.float32 and ids.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_an_items_own_vector_ranks_it_first(kind):
    vecs = unit_vectors(1000, 32, seed=2)
    idx = VectorIndex.build(vecs, items(1000), MODEL, kind=kind)
    rows = [0, 17, 512, 999]
    scores, ids = idx.search(vecs[rows], 3)
    assert ids[:, 0].tolist() == rows
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_few_queries_run_on_one_faiss_thread_and_the_setting_is_restored(kind, monkeypatch):
    """A search of up to FEW_QUERIES vectors runs FAISS on one thread (one query gains nothing from
    two; bench/bench_retrieval.py), more on FAISS's own setting, which is left as it was; the
    answers are those of the batch."""
    import faiss

    vecs = unit_vectors(2000, 32, seed=4)
    idx = VectorIndex.build(vecs, items(2000), MODEL, kind=kind)
    queries = unit_vectors(vindex.FEW_QUERIES + 4, 32, seed=5)
    seen = []
    search = idx.faiss_index.search
    monkeypatch.setattr(idx.faiss_index, "search",
                        lambda *a, **kw: seen.append(faiss.omp_get_max_threads()) or search(*a, **kw))
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        batch = idx.search(queries, 5)
        singles = [idx.search(q, 5) for q in queries[:3]]
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
    assert seen == [2, 1, 1, 1]
    for i, (scores, ids) in enumerate(singles):
        np.testing.assert_array_equal(ids[0], batch[1][i])


def test_flat_and_hnsw_agree_on_the_best_item():
    vecs = unit_vectors(3000, 32, seed=3)
    queries = unit_vectors(200, 32, seed=4)
    flat = VectorIndex.build(vecs, items(3000), MODEL, kind="flat").search(queries, 1)[1][:, 0]
    hnsw = VectorIndex.build(vecs, items(3000), MODEL, kind="hnsw").search(queries, 1)[1][:, 0]
    assert np.mean(flat == hnsw) >= 0.97
    exact = np.argmax(queries @ vecs.T, axis=1)  # the flat index is exact
    np.testing.assert_array_equal(flat, exact)


def test_ef_search_trades_speed_for_recall_on_hnsw_and_is_checked():
    """More HNSW candidates per query find more of the exact top 10; a flat index is exact
    whatever it is given; a candidate count below 1 is refused."""
    vecs = unit_vectors(20000, 64, seed=5)
    queries = unit_vectors(100, 64, seed=6)
    exact = np.argsort(-(queries @ vecs.T), axis=1)[:, :10]
    hnsw = VectorIndex.build(vecs, items(20000), MODEL, kind="hnsw")

    def recall(ef):
        found = hnsw.search(queries, 10, ef_search=ef)[1]
        return np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)])

    few, many = recall(10), recall(400)
    assert many > few and many >= 0.95, (few, many)
    flat = VectorIndex.build(vecs[:500], items(500), MODEL, kind="flat")
    np.testing.assert_array_equal(flat.search(queries, 5, ef_search=1)[1], flat.search(queries, 5)[1])
    for bad in (0, -3, 2.5, True):
        with pytest.raises(OptionError, match="--ef-search"):
            hnsw.search(queries, 10, ef_search=bad)


def test_scores_are_raw_inner_products_not_normalised():
    vecs = np.array([[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    scores, ids = VectorIndex.build(vecs, items(3), MODEL, kind="flat").search(np.array([2.0, 1.0]), 3)
    assert ids[0].tolist() == [0, 2, 1]
    np.testing.assert_allclose(scores[0], [6.0, 3.0, 1.0])


def test_auto_kind_and_k_larger_than_the_index():
    assert vindex.choose_kind("auto", vindex.HNSW_FROM) == "flat"
    assert vindex.choose_kind("auto", vindex.HNSW_FROM + 1) == "hnsw"
    assert vindex.choose_kind("hnsw", 5) == "hnsw"
    with pytest.raises(OptionError, match="kind"):
        vindex.choose_kind("ivf", 5)
    idx = VectorIndex.build(unit_vectors(4, 8), items(4), MODEL)
    assert idx.kind == "flat"
    scores, ids = idx.search(unit_vectors(2, 8, seed=9), 10)
    assert ids.shape == (2, 4) and sorted(ids[0].tolist()) == [0, 1, 2, 3]


def test_bad_queries_and_bad_builds_are_refused():
    idx = VectorIndex.build(unit_vectors(10, 8), items(10), MODEL)
    with pytest.raises(OptionError, match="dimension 5, the index has dimension 8"):
        idx.search(np.ones((1, 5)), 3)
    with pytest.raises(OptionError, match="NaN"):
        idx.search(np.full(8, np.nan), 3)
    for k in (0, -1, 2.5, True):
        with pytest.raises(OptionError, match="k"):
            idx.search(np.ones(8), k)
    with pytest.raises(OptionError, match="no items"):
        VectorIndex.build(np.zeros((0, 8)), [], MODEL)
    with pytest.raises(OptionError, match="3 item vectors for 10 items"):
        VectorIndex.build(unit_vectors(3, 8), items(10), MODEL)
    with pytest.raises(OptionError, match="occurs twice"):
        VectorIndex.build(unit_vectors(2, 8), [items(1)[0]] * 2, MODEL)
    bad = IndexItem("../escape", "ground", "/x.jpg", 0.0, 0.0)
    with pytest.raises(OptionError, match="thumbnail"):
        VectorIndex.build(unit_vectors(1, 8), [bad], MODEL)


@pytest.fixture
def saved(tmp_path):
    root = tmp_path / "idx"
    root.mkdir()
    VectorIndex.build(unit_vectors(30, 8), items(30), MODEL).save(root)
    return root


def test_missing_and_corrupt_index_folders_name_the_file(saved, tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        VectorIndex.load(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputFileError, match="not a folder"):
        VectorIndex.load(tmp_path / "file")
    with pytest.raises(InputFileError, match="index.json not found"):
        VectorIndex.load(tmp_path)

    meta = json.loads((saved / "index.json").read_text())
    for change, message in [({"format": "x"}, "'format'"), ({"version": 9}, "'version'"), ({"dim": "8"}, "'dim'"),
                            ({"kind": "ivf"}, "'kind'"), ({"model": None}, "'model'"),
                            ({"count": 31}, "holds 30 vectors")]:
        (saved / "index.json").write_text(json.dumps({**meta, **change}))
        with pytest.raises(InputFileError, match=message) as err:
            VectorIndex.load(saved)
        assert str(saved) in str(err.value)
    (saved / "index.json").write_text("{not json")
    with pytest.raises(InputFileError, match="index.json is not readable JSON"):
        VectorIndex.load(saved)
    (saved / "index.json").write_text(json.dumps(meta))

    lines = (saved / "items.jsonl").read_text().splitlines()
    (saved / "items.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputFileError, match="has 29 items; index.json says 30"):
        VectorIndex.load(saved)
    row = json.loads(lines[3])
    (saved / "items.jsonl").write_text("\n".join([*lines[:3], json.dumps({**row, "lon": "east"}), *lines[4:]]))
    with pytest.raises(InputFileError, match=r"items.jsonl, line 4: 'lon' must be a finite number"):
        VectorIndex.load(saved)
    (saved / "items.jsonl").write_text("\n".join(lines) + "\n")

    blob = (saved / "vectors.faiss").read_bytes()
    (saved / "vectors.faiss").write_bytes(b"garbage" * 10)
    with pytest.raises(InputFileError, match="vectors.faiss is not a readable FAISS index"):
        VectorIndex.load(saved)
    (saved / "vectors.faiss").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(InputFileError, match="vectors.faiss"):
        VectorIndex.load(saved)
    (saved / "vectors.faiss").unlink()
    with pytest.raises(InputFileError, match="vectors.faiss not found"):
        VectorIndex.load(saved)


def test_output_folder_checks(tmp_path, saved):
    assert vindex.check_index_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert vindex.check_index_folder(saved) == saved  # an index is rebuilt in place
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="holds other files"):
        vindex.check_index_folder(tmp_path / "other", "--out")
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        vindex.check_index_folder(tmp_path / "f")
    with pytest.raises(OutputError, match="cannot be made"):
        vindex.check_index_folder(tmp_path / "f" / "sub")


def test_thumbnails_are_written_and_stale_ones_removed(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    rel = vindex.write_thumbnail(tmp_path, "i000001", rgb)
    assert rel == "thumbs/i000001.jpg"
    from PIL import Image

    with Image.open(tmp_path / rel) as im:
        assert im.format == "JPEG" and max(im.size) == vindex.THUMB_SIZE
    vindex.write_thumbnail(tmp_path, "old", rgb)
    idx = VectorIndex.build(unit_vectors(1, 4), [IndexItem("i000001", "ground", "/a.jpg", 0.0, 0.0, None, rel)])
    idx.save(tmp_path)
    assert vindex.remove_stale_thumbnails(idx) == 1
    assert sorted(p.name for p in (tmp_path / "thumbs").iterdir()) == ["i000001.jpg"]
    assert idx.thumbnail_path(idx.items[0]) == tmp_path / rel
    assert not list(tmp_path.rglob("*.smgeo-tmp*"))
