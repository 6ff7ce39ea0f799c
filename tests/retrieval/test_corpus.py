"""The seeded multi-platform corpus generator (``smgeo synth-retrieval``) on tiny corpora."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio
import shapely
from shapely import wkt

from smgeo_geo.cli import main
from smgeo_geo.errors import ManifestError, OptionError, OutputError
from smgeo_retrieval.corpus import CorpusOptions, generate_corpus
from smgeo_retrieval.corpus.captions import NOUNS
from smgeo_retrieval.corpus.georef import read_gps
from smgeo_retrieval.corpus.places import build_place, choose_class
from smgeo_retrieval.corpus_io import CorpusItem, load_image, read_corpus, write_items
from smgeo_retrieval.text import ORIENTATION_WORDS, normalize, remove_orientation_words

PLACES, SIZE, DRONE, GROUND, SEED = 6, 64, 2, 2, 7
OPTS = CorpusOptions(places=PLACES, seed=SEED, image_size=SIZE, drone_views=DRONE, ground_views=GROUND)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus") / "c"
    generate_corpus(folder, OPTS, workers=1, progress=False)
    return folder


@pytest.fixture(scope="module")
def loaded(corpus):
    return read_corpus(corpus, check_images=True)


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout_and_format(corpus, loaded):
    meta, items = loaded
    assert set(p.name for p in corpus.iterdir()) == {"corpus.json", "items.jsonl", "images"}
    assert meta["format"] == "smgeo-retrieval-corpus" and meta["version"] == 1
    assert meta["seed"] == SEED and meta["places"] == PLACES and meta["image_size"] == SIZE
    assert meta["platforms"] == ["satellite", "drone", "ground"] and meta["crs"] == "EPSG:4326"
    assert len(items) == PLACES * (1 + DRONE + GROUND)
    lines = (corpus / "items.jsonl").read_text(encoding="utf-8").splitlines()
    ids = [json.loads(x)["item_id"] for x in lines]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert list(json.loads(lines[0])) == ["item_id", "place_id", "platform", "split", "image", "lon", "lat",
                                          "footprint", "caption", "query"]
    per_place = defaultdict(list)
    for it in items:
        per_place[it.place_id].append(it.platform)
        suffix = ".tif" if it.platform == "satellite" else ".jpg"
        assert it.image == f"images/{it.platform}/{it.item_id}{suffix}"
        img = load_image(corpus, it)
        assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8 and img.std() > 5
    assert len(per_place) == PLACES
    for platforms in per_place.values():
        assert sorted(platforms) == sorted(["satellite"] + ["drone"] * DRONE + ["ground"] * GROUND)


def test_item_ids_are_opaque(loaded):
    _, items = loaded
    # consecutive ids do not follow place or platform
    by_id = sorted(items, key=lambda it: it.item_id)
    assert len({it.place_id for it in by_id[:1 + DRONE + GROUND]}) > 1
    assert all(re.fullmatch(r"i\d{6}", it.item_id) for it in items)


def test_deterministic_whatever_the_workers(corpus, tmp_path):
    again = tmp_path / "again"
    generate_corpus(again, OPTS, workers=2, progress=False)
    assert (again / "items.jsonl").read_bytes() == (corpus / "items.jsonl").read_bytes()
    assert _hashes(again) == _hashes(corpus)
    other = tmp_path / "other"
    generate_corpus(other, CorpusOptions(places=2, seed=SEED + 1, image_size=SIZE, drone_views=1, ground_views=0),
                    progress=False)
    assert (other / "items.jsonl").read_bytes() != (corpus / "items.jsonl").read_bytes()


def test_split_by_place(loaded):
    meta, items = loaded
    split_of = {}
    for it in items:
        assert split_of.setdefault(it.place_id, it.split) == it.split
    assert sorted(split_of.values()).count("train") == meta["counts"]["train"]["places"]
    assert set(split_of.values()) == {"train", "val", "test"}  # 6 places at 0.8 / 0.1 / 0.1: 4 / 1 / 1


def test_satellite_georeferencing(corpus, loaded):
    _, items = loaded
    for it in (it for it in items if it.platform == "satellite"):
        with rasterio.open(corpus / it.image) as ds:
            assert ds.crs.is_projected and ds.width == SIZE and ds.height == SIZE
            b = ds.bounds
            x, y = pyproj.Transformer.from_crs("EPSG:4326", ds.crs.to_wkt(), always_xy=True).transform(it.lon, it.lat)
            assert b.left < x < b.right and b.bottom < y < b.top
            assert abs(x - (b.left + b.right) / 2) < 0.01 and abs(y - (b.bottom + b.top) / 2) < 0.01  # tile centre
        poly = wkt.loads(it.footprint)
        assert poly.geom_type == "Polygon" and poly.contains(shapely.Point(it.lon, it.lat))
    # the place's satellite tile contains the place's drone and ground camera targets' surroundings
    sat = {it.place_id: wkt.loads(it.footprint) for it in items if it.platform == "satellite"}
    for it in items:
        if it.platform == "drone" and it.footprint is not None:
            assert wkt.loads(it.footprint).intersects(sat[it.place_id])


def test_exif_gps_matches_items(corpus, loaded):
    _, items = loaded
    checked = 0
    for it in items:
        if it.platform in ("drone", "ground"):
            lon, lat, alt = read_gps(corpus / it.image)
            assert lon == pytest.approx(it.lon, abs=1e-7) and lat == pytest.approx(it.lat, abs=1e-7)
            assert alt is not None and (alt >= 30 if it.platform == "drone" else 1.0 <= alt <= 2.5)
            checked += 1
    assert checked == PLACES * (DRONE + GROUND)


def test_captions_state_the_true_class_and_colour(loaded):
    _, items = loaded
    by_place = defaultdict(list)
    for it in items:
        by_place[it.place_id].append(it)
    for i in range(PLACES):
        rng = np.random.default_rng(np.random.SeedSequence([SEED, i]))
        place = build_place(rng, choose_class(rng))
        t = place.thing
        for it in by_place[f"p{i:05d}"]:
            for text in (it.caption, it.query):
                assert any(n in text for n in NOUNS[t.kind]), (t.kind, text)
                if t.colour:
                    assert t.colour in text, (t.colour, text)
                if t.roof:
                    assert t.roof in text
                if t.size:
                    assert t.size in text
                if t.extra:
                    assert t.extra in text


def test_no_identifier_leaks(loaded):
    _, items = loaded
    ids = {it.item_id for it in items} | {it.place_id for it in items}
    for it in items:
        for text in (it.caption, it.query):
            assert not re.search(r"\d", text), text
            assert not any(i in text for i in ids)
            assert it.platform not in ("satellite",) or "drone" not in text.split(" of ")[0]


def _words(text: str) -> set[str]:
    """Words of ``text``, hyphenated ones both whole and split (``right-hand`` -> also ``right``)."""
    t = normalize(text)
    return set(t.split()) | set(re.split(r"[\s-]+", t))


def test_queries_have_orientation_words_that_are_removed(loaded):
    _, items = loaded
    words = set(ORIENTATION_WORDS)
    for it in items:
        assert _words(it.query) & words, it.query
        assert not _words(it.caption) & words, it.caption
        stripped = remove_orientation_words(it.query)
        assert not _words(stripped) & words, stripped
    openings = {"satellite": "overhead|satellite|aerial", "drone": "drone", "ground": "street|ground|pedestrian"}
    for it in items:
        assert re.search(openings[it.platform], it.query), it.query


def test_read_corpus_reports_file_and_line(corpus, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corpus.json").write_bytes((corpus / "corpus.json").read_bytes())
    lines = (corpus / "items.jsonl").read_text(encoding="utf-8").splitlines()
    obj = json.loads(lines[2])
    obj["platform"] = "balloon"
    (bad / "items.jsonl").write_text("\n".join(lines[:2] + [json.dumps(obj)]) + "\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"items.jsonl, line 3: platform 'balloon'"):
        read_corpus(bad)
    (bad / "items.jsonl").write_text(lines[0] + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="line 2: not valid JSON"):
        read_corpus(bad)
    (bad / "corpus.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ManifestError, match="corpus.json"):
        read_corpus(bad)


def test_write_items_sorts_and_round_trips(tmp_path):
    a = CorpusItem("i2", "p1", "drone", "train", "images/drone/i2.jpg", 1.5, 2.5, None, "a red house.", "q")
    b = CorpusItem("i1", "p1", "satellite", "train", "images/satellite/i1.tif", 1.0, 2.0,
                   "POLYGON ((0 0, 1 0, 1 1, 0 0))", "c", "q")
    write_items(tmp_path / "items.jsonl", [a, b])
    from smgeo_retrieval.corpus_io import read_items

    assert read_items(tmp_path / "items.jsonl") == [b, a]


def test_bad_options_and_folders(tmp_path, corpus):
    with pytest.raises(OptionError, match="places"):
        generate_corpus(tmp_path / "x", CorpusOptions(places=0))
    with pytest.raises(OptionError, match="image size"):
        generate_corpus(tmp_path / "x", CorpusOptions(places=1, image_size=8))
    with pytest.raises(OptionError, match="splits"):
        generate_corpus(tmp_path / "x", CorpusOptions(places=1, splits=(1.0, -1.0, 0.0)))
    with pytest.raises(OutputError, match="--overwrite"):
        generate_corpus(corpus, OPTS)


def _run(args, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args, word", [
    (["--places", "0"], "places"),
    (["--places", "2", "--image-size", "4"], "image size"),
    (["--places", "2", "--drone-views", "-1"], "drone views"),
    (["--places", "2", "--splits", "0.8,0.2"], "--splits"),
    (["--places", "2", "--workers", "0"], "workers"),
    (["--places", "x"], "--places"),
    ([], "--places"),
])
def test_cli_bad_options_exit_2_with_one_line(args, word, tmp_path, capsys):
    code, out, err = _run(["synth-retrieval", "--out", tmp_path / "c", *args], capsys)
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and word in lines[0], err
    assert not (tmp_path / "c" / "corpus.json").exists()


def test_cli_writes_a_corpus(tmp_path, capsys):
    code, out, err = _run(["synth-retrieval", "--out", tmp_path / "c", "--places", "2", "--image-size", "48",
                           "--drone-views", "1", "--ground-views", "1", "--workers", "1", "--quiet"], capsys)
    assert code == 0, err
    assert "wrote 2 places, 6 items" in out
    meta, items = read_corpus(tmp_path / "c", check_images=True)
    assert meta["image_size"] == 48 and len(items) == 6
