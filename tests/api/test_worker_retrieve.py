"""The worker's ``retrieve`` op, through the real pipes of a worker process: hits as the library
gives them, the opened index cached, and bad requests answered (the worker keeps serving)."""

from __future__ import annotations

import pytest

from smgeo_retrieval.api import Retriever, build_index, checkpoint_model_id
from smgeo_retrieval.sources import CorpusSource

from ..retrieval.index_helpers import make_checkpoint, make_corpus
from .test_worker import RawWorker


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("worker_retrieve")
    corpus = make_corpus(root / "corpus", places=3)
    ckpt = make_checkpoint(root / "tiny", corpus)
    build_index([CorpusSource(corpus)], ckpt, root / "idx")
    return {"root": root, "corpus": corpus, "checkpoint": ckpt, "index": root / "idx"}


def _retrieve(request_id, **params) -> dict:
    return {"id": request_id, "method": "retrieve", "params": params}


def test_retrieve_through_the_pipes(built, tmp_path):
    worker = RawWorker()
    try:
        text = "a red roof next to a road"
        worker.send(_retrieve(1, text=text, index=str(built["index"]), top_k=4))
        first = worker.final(1)
        assert first["event"] == "result", first
        result = first["result"]
        expected = Retriever.open(built["index"]).search(text, 4)
        assert [h["item_id"] for h in result["hits"]] == [h.item_id for h in expected]
        assert [h["rank"] for h in result["hits"]] == [1, 2, 3, 4]
        assert [h["score"] for h in result["hits"]] == pytest.approx([h.score for h in expected], abs=1e-5)
        assert set(result["hits"][0]) == {"rank", "score", "item_id", "platform", "image", "thumbnail", "lon", "lat",
                                          "footprint"}
        assert result["model"] == {"checkpoint": str(built["checkpoint"]),
                                   "model_id": checkpoint_model_id(built["checkpoint"])}
        assert result["index_cached"] is False and result["count"] > 4

        worker.send(_retrieve(2, text="a round pond", index=str(built["index"]), checkpoint=str(built["checkpoint"])),
                    _retrieve(3, text="a round pond", index=str(built["index"])))
        assert len(worker.final(2)["result"]["hits"]) == min(10, result["count"])  # top_k defaults to 10
        assert worker.final(3)["result"]["index_cached"] is True

        other = make_checkpoint(tmp_path / "other", built["corpus"], seed=7)
        bad = [
            (_retrieve(10, index=str(built["index"])), "ProtocolError", "'text'"),
            (_retrieve(11, text="x"), "ProtocolError", "'index'"),
            (_retrieve(12, text="x", index=str(built["index"]), top_k="5"), "ProtocolError", "'top_k'"),
            (_retrieve(13, text="x", index=str(built["index"]), limit=3), "ProtocolError", "'limit'"),
            (_retrieve(14, text="  ", index=str(built["index"])), "OptionError", "text is empty"),
            (_retrieve(15, text="x", index=str(built["index"]), top_k=0), "OptionError", "top-k"),
            (_retrieve(18, text="x", index=str(built["index"]), ef_search=0), "OptionError", "--ef-search"),
            (_retrieve(19, text="x", index=str(built["index"]), ef_search="many"), "ProtocolError", "'ef_search'"),
            (_retrieve(21, text="x", index=str(built["index"]), place_fusion="no"), "ProtocolError", "'place_fusion'"),
            (_retrieve(16, text="x", index=str(tmp_path / "none")), "InputFileError", "not found"),
            (_retrieve(17, text="x", index=str(built["index"]), checkpoint=str(other)), "CheckpointError",
             "built with"),
        ]
        worker.send(*(request for request, _, _ in bad))
        for request, kind, words in bad:
            reply = worker.final(request["id"])
            assert reply["event"] == "error" and reply["error"]["type"] == kind, reply
            assert words in reply["error"]["message"]
        worker.send(_retrieve(20, text=text, index=str(built["index"]), top_k=4, ef_search=64))
        assert [h["item_id"] for h in worker.final(20)["result"]["hits"]] == [h.item_id for h in expected]
        plain = Retriever.open(built["index"]).search(text, 4, place_fusion=False)
        worker.send(_retrieve(22, text=text, index=str(built["index"]), top_k=4, place_fusion=False))
        hits = worker.final(22)["result"]["hits"]
        assert [h["score"] for h in hits] == pytest.approx([h.score for h in plain], abs=1e-5)
        assert [h["score"] for h in hits] != pytest.approx([h["score"] for h in result["hits"]], abs=1e-5)
        assert worker.close() == 0
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
