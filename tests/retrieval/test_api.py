"""The retrieval API: building an index with a real (tiny, untrained) model, opening it, searching,
and the hit writers (GeoJSON / GeoPackage read back with pyogrio and geopandas)."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pyproj
import pytest
from shapely import wkt
from shapely.geometry import Point

from smgeo_geo.errors import CheckpointError, ImageError, InputFileError, OptionError, OutputError
from smgeo_retrieval.api import Retriever, build_index, checkpoint_model_id
from smgeo_retrieval.corpus_io import load_image, read_corpus
from smgeo_retrieval.hits import Hit, hits_feature_collection, write_hits
from smgeo_retrieval.place_fusion import PLACE_RADIUS_M, PLACE_WEIGHT
from smgeo_retrieval.sources import CorpusSource, ImageFolder

from .index_helpers import TILE_GSD, TILE_ORIGIN, UTM_32N, make_checkpoint, make_corpus, make_image_folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    corpus = make_corpus(root / "corpus")
    ckpt = make_checkpoint(root / "tiny", corpus)
    calls = []
    report = build_index([CorpusSource(corpus)], ckpt, root / "idx", progress=lambda d, t: calls.append((d, t)),
                         batch_size=5)
    return {"root": root, "corpus": corpus, "checkpoint": ckpt, "index": root / "idx", "report": report,
            "calls": calls}


def test_build_from_a_corpus_keeps_its_items_and_encodes_them_as_training_does(setup):
    meta, items = read_corpus(setup["corpus"])
    index = setup["report"].index
    assert index.count == len(items) and index.kind == "flat" and setup["report"].skipped == []
    assert setup["calls"][-1] == (len(items), len(items)) and len(setup["calls"]) == -(-len(items) // 5)
    assert index.model == {"checkpoint": str(setup["checkpoint"]), "model_id": checkpoint_model_id(setup["checkpoint"])}
    for it, rec in zip(items, index.items):
        assert (rec.item_id, rec.platform, rec.lon, rec.lat, rec.footprint) == \
            (it.item_id, it.platform, it.lon, it.lat, it.footprint)
        assert rec.image == str(setup["corpus"] / it.image)
        assert (setup["index"] / rec.thumbnail).is_file()
    retriever = Retriever.open(setup["index"])
    pixels = [load_image(setup["corpus"], it) for it in items[:6]]
    expected = retriever.model.encode_images(pixels, [it.platform for it in items[:6]])
    stored = np.stack([index.faiss_index.reconstruct(i) for i in range(6)])
    np.testing.assert_allclose(stored, expected, atol=1e-5)


def test_search_scores_are_the_models_inner_products(setup):
    retriever = Retriever.open(setup["index"])
    assert retriever.model_id == checkpoint_model_id(setup["checkpoint"])
    text = "a red roof next to a road"
    hits = retriever.search(text, top_k=5, place_fusion=False)
    vectors = np.stack([retriever.index.faiss_index.reconstruct(i) for i in range(retriever.index.count)])
    scores = vectors @ retriever.model.encode_queries([text])[0]
    order = np.argsort(-scores, kind="stable")[:5]
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([h.score for h in hits], scores[order], atol=1e-5)
    row_of = {item.item_id: i for i, item in enumerate(retriever.index.items)}
    np.testing.assert_allclose([scores[row_of[h.item_id]] for h in hits], [h.score for h in hits], atol=1e-5)
    for h in hits:
        assert h.thumbnail.startswith(str(setup["index"])) and h.image.startswith(str(setup["corpus"]))
    many = retriever.search_many([text, "a round pond"], top_k=3, place_fusion=False)
    assert [h.item_id for h in many[0]] == [h.item_id for h in hits[:3]]


def test_search_with_place_fusion_ranks_by_the_documented_fused_score(setup):
    """Default search: each item's expert cosine joined by the mean of its neighbours' (items
    within PLACE_RADIUS_M, by geodesic distance), times the gate of its platform."""
    retriever = Retriever.open(setup["index"])
    items = retriever.index.items
    vectors = np.stack([retriever.index.faiss_index.reconstruct(i) for i in range(retriever.index.count)])
    lon, lat = np.array([it.lon for it in items]), np.array([it.lat for it in items])
    geod = pyproj.Geod(ellps="WGS84")
    n = len(items)
    _, _, dist = geod.inv(np.repeat(lon, n), np.repeat(lat, n), np.tile(lon, n), np.tile(lat, n))
    near = (dist.reshape(n, n) <= PLACE_RADIUS_M) & ~np.eye(n, dtype=bool)
    assert near.any(axis=1).sum() >= 2, "the test corpus needs items with neighbours"
    platforms = list(retriever.model.config.platforms)
    for text in ("a red roof next to a road", "a round pond"):
        u, g = retriever.model.encode_query_experts([text])
        cos = vectors @ u[0]
        around = np.array([cos[near[i]].mean() if near[i].any() else cos[i] for i in range(n)])
        gate = np.array([g[0, platforms.index(it.platform)] for it in items])
        fused = gate * ((1 - PLACE_WEIGHT) * cos + PLACE_WEIGHT * around)
        hits = retriever.search(text, top_k=5)
        order = np.argsort(-fused, kind="stable")[:5]
        assert [h.item_id for h in hits] == [items[i].item_id for i in order]
        np.testing.assert_allclose([h.score for h in hits], fused[order], atol=1e-5)


class QueryIsAnItem:
    """Stands in for the model: the query vector of text ``"item N"`` is item N's stored vector."""

    def __init__(self, index) -> None:
        self.index = index

    def encode_queries(self, texts):
        return np.stack([self.index.faiss_index.reconstruct(int(t.split()[1])) for t in texts])


def test_the_item_whose_vector_is_the_query_ranks_first(setup):
    retriever = Retriever.open(setup["index"])
    vectors = np.stack([retriever.index.faiss_index.reconstruct(i) for i in range(retriever.index.count)])
    norms = np.linalg.norm(vectors, axis=1)
    retriever.model = QueryIsAnItem(retriever.index)
    checked = 0
    for row in np.argsort(-norms)[:3]:  # an item whose own score beats every other inner product
        if np.max(np.delete(vectors @ vectors[row], row)) >= norms[row] ** 2 - 1e-6:
            continue
        hit = retriever.search(f"item {row}", top_k=3, place_fusion=False)[0]
        item = retriever.index.items[row]
        assert (hit.rank, hit.item_id, hit.platform, hit.lon, hit.lat, hit.footprint) == \
            (1, item.item_id, item.platform, item.lon, item.lat, item.footprint)
        assert hit.score == pytest.approx(norms[row] ** 2, rel=1e-5)
        checked += 1
    assert checked


def test_bad_queries_are_refused(setup):
    retriever = Retriever.open(setup["index"])
    for text in ("", "   \n", None):
        with pytest.raises(OptionError, match="text is empty"):
            retriever.search(text)
    for k in (0, -3, 101, 2.5):
        with pytest.raises(OptionError, match="top-k"):
            retriever.search("a road", top_k=k)


def test_open_refuses_another_model_and_finds_moved_weights(setup, tmp_path):
    other = make_checkpoint(tmp_path / "other", setup["corpus"], seed=1)
    with pytest.raises(CheckpointError, match="was built with tiny@") as err:
        Retriever.open(setup["index"], other)
    assert str(other) in str(err.value)
    moved = tmp_path / "moved"
    moved.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(setup["checkpoint"].with_suffix(suffix), moved / f"tiny{suffix}")
    assert Retriever.open(setup["index"], moved / "tiny.safetensors").model_id == checkpoint_model_id(
        setup["checkpoint"])
    copy = tmp_path / "idx"
    shutil.copytree(setup["index"], copy)
    meta = json.loads((copy / "index.json").read_text())
    meta["model"]["checkpoint"] = str(tmp_path / "gone.safetensors")
    (copy / "index.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="gone.safetensors not found; give the checkpoint with --checkpoint"):
        Retriever.open(copy)
    with pytest.raises(InputFileError, match="not found"):
        Retriever.open(tmp_path / "no_index")


def test_dimension_mismatch_between_model_and_index_is_named(setup, tmp_path):
    from smgeo_retrieval.index import VectorIndex

    index = VectorIndex.load(setup["index"])
    small = VectorIndex.build(np.ones((index.count, 5), np.float32) / 5, index.items, index.model)
    root = tmp_path / "idx5"
    root.mkdir()
    small.save(root)
    with pytest.raises(CheckpointError, match="dimension 5"):
        Retriever.open(root).search("a road")


def test_build_from_an_image_folder_places_tiles_and_photos(setup, tmp_path):
    folder = make_image_folder(tmp_path / "images")
    with pytest.warns(UserWarning, match="skipped 2 image") as caught:
        report = build_index([ImageFolder(folder)], setup["checkpoint"], tmp_path / "idx", kind="hnsw")
    message = str(caught[0].message)
    assert "nogps.jpg" in message and "plain.tif" in message
    index = report.index
    by_id = {i.item_id: i for i in index.items}
    assert sorted(by_id) == ["drone", "street", "tiles_a"] and index.kind == "hnsw"
    assert by_id["drone"].platform == "drone" and by_id["street"].platform == "ground"
    assert (by_id["drone"].lon, by_id["drone"].lat, by_id["drone"].footprint) == (9.01, 46.95, None)
    tile = by_id["tiles_a"]
    to_lonlat = pyproj.Transformer.from_crs(UTM_32N, "EPSG:4326", always_xy=True)
    half = 32 * TILE_GSD
    lon, lat = to_lonlat.transform(TILE_ORIGIN[0] + half, TILE_ORIGIN[1] - half)
    assert tile.platform == "satellite" and (tile.lon, tile.lat) == pytest.approx((lon, lat), abs=1e-7)
    poly = wkt.loads(tile.footprint)
    corner = to_lonlat.transform(TILE_ORIGIN[0], TILE_ORIGIN[1])
    assert poly.exterior.is_ccw and poly.contains(Point(tile.lon, tile.lat))
    assert min(Point(corner).distance(Point(c)) for c in poly.exterior.coords) < 1e-7
    assert all((tmp_path / "idx" / i.thumbnail).is_file() for i in index.items)
    hits = Retriever.open(tmp_path / "idx").search("a road", top_k=10)
    assert len(hits) == 3


def test_photo_platform_can_be_forced_and_the_output_may_not_be_odd(setup, tmp_path):
    folder = make_image_folder(tmp_path / "images")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = build_index([ImageFolder(folder, "drone")], setup["checkpoint"], folder / "idx")  # inside: ignored
    assert {i.platform for i in report.index.items} == {"drone", "satellite"} and report.index.count == 3
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(OutputError, match="holds other files"):
        build_index([ImageFolder(folder)], setup["checkpoint"], tmp_path / "other")
    with pytest.raises(OptionError, match="no images to index"):
        build_index([ImageFolder(tmp_path / "other")], setup["checkpoint"], tmp_path / "new")
    assert not (tmp_path / "new").exists()
    with pytest.raises(OptionError, match="index kind"):
        build_index([CorpusSource(setup["corpus"])], setup["checkpoint"], tmp_path / "new", kind="ivf")


def test_a_failed_build_leaves_no_new_folder_and_keeps_an_old_index(setup, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(setup["corpus"], corpus)
    _, items = read_corpus(corpus)
    broken = next(i for i in items[3:] if i.platform == "drone")
    (corpus / broken.image).write_bytes(b"not a jpeg")
    with pytest.raises(ImageError, match=broken.item_id):
        build_index([CorpusSource(corpus)], setup["checkpoint"], tmp_path / "a" / "idx", batch_size=2)
    assert not (tmp_path / "a").exists()
    old = tmp_path / "old"
    shutil.copytree(setup["index"], old)
    before = {p.name: p.read_bytes() for p in old.iterdir() if p.is_file()}
    thumbs = sorted(p.name for p in (old / "thumbs").iterdir())
    with pytest.raises(ImageError):
        build_index([CorpusSource(corpus)], setup["checkpoint"], old, batch_size=2)
    assert {p.name: p.read_bytes() for p in old.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in (old / "thumbs").iterdir()) == thumbs
    assert not list(tmp_path.rglob("*.smgeo-tmp*"))


def test_a_split_is_indexed_alone(setup, tmp_path):
    _, items = read_corpus(setup["corpus"])
    report = build_index([CorpusSource(setup["corpus"], "test")], setup["checkpoint"], tmp_path / "idx")
    assert [i.item_id for i in report.index.items] == [i.item_id for i in items if i.split == "test"]


# -- writers ----------------------------------------------------------------------------------
SQUARE = "POLYGON ((9 47, 9 47.001, 9.001 47.001, 9.001 47, 9 47))"  # clockwise on purpose
HITS = [Hit(1, 0.9, "i1", "satellite", "/d/i1.tif", "/idx/thumbs/i1.jpg", 9.0005, 47.0005, SQUARE),
        Hit(2, 0.5, "i2", "ground", "/d/i2.jpg", None, 9.01, 47.02, None)]


def test_geojson_hits_read_back_in_wgs84(tmp_path):
    import geopandas as gpd

    path = tmp_path / "hits.geojson"
    write_hits(HITS, path, query="a tile", model_id="tiny@x")
    fc = json.loads(path.read_text())
    assert "crs" not in fc and [f["geometry"]["type"] for f in fc["features"]] == ["Polygon", "Point"]
    df = gpd.read_file(path)
    assert df.crs.to_epsg() == 4326
    assert list(df["rank"]) == [1, 2] and list(df["item_id"]) == ["i1", "i2"]
    assert list(df["platform"]) == ["satellite", "ground"] and list(df["thumbnail"]) == ["/idx/thumbs/i1.jpg", ""]
    assert df.geometry[0].exterior.is_ccw and df.geometry[0].equals(wkt.loads(SQUARE))
    assert df.geometry[1].equals(Point(9.01, 47.02))
    assert list(df["query"]) == ["a tile"] * 2 and list(df["model_id"]) == ["tiny@x"] * 2
    assert hits_feature_collection([])["features"] == []


def test_geopackage_hits_have_points_and_footprints_layers(tmp_path):
    import pyogrio

    path = tmp_path / "hits.gpkg"
    write_hits(HITS, path)
    layers = {name: kind for name, kind in pyogrio.list_layers(path)}
    assert layers == {"hits": "Point", "footprints": "Polygon"}
    points = pyogrio.read_dataframe(path, layer="hits")
    polys = pyogrio.read_dataframe(path, layer="footprints")
    assert points.crs.to_epsg() == 4326 and polys.crs.to_epsg() == 4326
    assert list(points["rank"]) == [1, 2] and list(points["score"]) == pytest.approx([0.9, 0.5])
    assert points.geometry[0].equals(Point(9.0005, 47.0005)) and list(polys["item_id"]) == ["i1"]
    assert polys.geometry[0].equals(wkt.loads(SQUARE))
    assert set(points.columns) >= {"rank", "score", "platform", "item_id", "image", "thumbnail"}
    write_hits(HITS[1:], tmp_path / "no_footprint.gpkg")  # an empty footprints layer is still written
    assert len(pyogrio.read_dataframe(tmp_path / "no_footprint.gpkg", layer="footprints")) == 0


def test_unknown_output_extension_is_refused(tmp_path):
    with pytest.raises(OptionError, match="must end in .geojson or .gpkg"):
        write_hits(HITS, tmp_path / "hits.shp")
    with pytest.raises(OutputError, match="does not exist"):
        write_hits(HITS, tmp_path / "missing" / "hits.geojson")
    assert list(tmp_path.iterdir()) == []


def test_evaluation_with_place_fusion_measures_what_search_ranks(setup):
    """`smgeo evaluate-retrieval`'s place-fusion row is the recall of `smgeo retrieve`'s ranking."""
    from smgeo_retrieval.evaluate import evaluate_model
    from smgeo_retrieval.train_data import load_pairs

    retriever = Retriever.open(setup["index"])
    data = load_pairs(setup["corpus"], "all", retriever.model.config.image_size)
    assert [it.item_id for it in data.items] == [it.item_id for it in retriever.index.items]
    fused = evaluate_model(retriever.model, data)["place_fusion"]["overall"]
    truth = {it.item_id: (it.place_id, it.platform) for it in data.items}
    ranked = retriever.search_many(data.queries, top_k=len(data))
    for k in (1, 5):
        hit_rate = np.mean([any(truth[h.item_id] == (it.place_id, it.platform) for h in hits[:k])
                            for hits, it in zip(ranked, data.items)])
        assert fused[f"R@{k}"] == pytest.approx(hit_rate)
