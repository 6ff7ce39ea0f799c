"""`smgeo demo-retrieval` with the bundled retrieval model, and `smgeo retrieve` on the index it
leaves: what a newcomer runs after `make demo`."""

from __future__ import annotations

import json

import pytest

from smgeo_geo.cli import main
from smgeo_retrieval.checkpoint import bundled_retrieval_checkpoint
from smgeo_retrieval.corpus_io import read_corpus


def test_bundled_retrieval_model_is_installed():
    weights = bundled_retrieval_checkpoint()
    assert weights.is_file() and weights.with_suffix(".json").is_file()


@pytest.mark.slow
def test_demo_indexes_searches_and_leaves_an_index_that_retrieve_reads(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["demo-retrieval", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert "right place and platform first for" in printed
    assert (out / "retrieval_demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _, items = read_corpus(out / "corpus")
    index_items = [json.loads(line) for line in (out / "index" / "items.jsonl").read_text().splitlines()]
    assert len(index_items) == len(items)
    hits = json.loads((out / "hits_1.geojson").read_text())["features"]
    assert len(hits) == 5 and [f["properties"]["rank"] for f in hits] == [1, 2, 3, 4, 5]
    # the index left behind answers `smgeo retrieve` with the same ranking for the same text
    query = hits[0]["properties"]["query"]
    main(["retrieve", "--index", str(out / "index"), "--text", query, "--top-k", "5",
          "--out", str(tmp_path / "again.geojson")])
    again = json.loads((tmp_path / "again.geojson").read_text())["features"]
    assert [f["properties"]["item_id"] for f in again] == [f["properties"]["item_id"] for f in hits]
