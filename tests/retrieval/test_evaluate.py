"""Retrieval metrics against hand-computed rankings, the report files and the
``evaluate-retrieval`` command (tiny preset, tiny generated corpus)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smgeo_retrieval.place_fusion import PLACE_RADIUS_M, PLACE_WEIGHT
from smgeo_retrieval.checkpoint import save_retrieval_checkpoint
from smgeo_retrieval.evaluate import random_report, score_report
from smgeo_retrieval.metrics import first_relevant_ranks, ranking_metrics, relevance
from smgeo_retrieval.model import RetrievalModel, get_retrieval_config
from smgeo_retrieval.train import build_tokenizer
from smgeo_retrieval.train_data import PairData, load_pairs
from tests.retrieval.retrieval_fixtures import TINY_SIZE, tiny_corpus_path
from tests.bad_inputs.conftest import run_cli


def test_metrics_hand_computed():
    scores = np.array([[0.9, 0.8, 0.1, 0.5],    # ranking 0 1 3 2; relevant {1, 2}: ranks 2 and 4
                       [0.1, 0.2, 0.3, 0.4],    # ranking 3 2 1 0; relevant {3}: rank 1
                       [0.0, 0.0, 0.0, 0.0],    # ties: gallery order 0 1 2 3; relevant {0, 1, 2, 3} minus none
                       [0.5, 0.4, 0.3, 0.2]])   # no relevant item: skipped
    relevant = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=bool)
    first, ap = first_relevant_ranks(scores, relevant)
    assert first.tolist() == [1, 0, 3, -1]
    np.testing.assert_allclose(ap[:3], [(1 / 2 + 2 / 4) / 2, 1.0, 1 / 4])
    assert np.isnan(ap[3])
    m = ranking_metrics(scores, relevant, ks=(1, 2, 4))
    assert m["R@1"] == pytest.approx(1 / 3) and m["R@2"] == pytest.approx(2 / 3) and m["R@4"] == 1.0
    assert m["mAP"] == pytest.approx((0.5 + 1.0 + 0.25) / 3)
    assert m["queries"] == 3 and m["skipped"] == 1


def test_relevance_same_place_and_platform():
    rel = relevance(["a", "a", "b"], ["sat", "drone", "sat"], ["a", "a", "b"], ["sat", "drone", "sat"])
    assert rel.tolist() == [[True, False, False], [False, True, False], [False, False, True]]
    loose = relevance(["a", "a", "b"], None, ["a", "a", "b"], None)
    assert loose.tolist() == [[True, True, False], [True, True, False], [False, False, True]]


def _fake(places, platforms) -> PairData:
    class Item:
        def __init__(self, p, f):
            self.place_id, self.platform, self.query, self.caption = p, f, "", ""

    return PairData([Item(p, f) for p, f in zip(places, platforms)], np.zeros((len(places), 4, 4, 3), np.uint8),
                    list(platforms))


def test_score_report_perfect_and_random():
    data = _fake(["a", "a", "b", "b", "c", "c"], ["satellite", "drone"] * 3)
    perfect = np.eye(6, dtype=np.float32)
    r = score_report(perfect, perfect, data)
    assert r["overall"]["R@1"] == 1.0 and r["overall"]["mAP"] == 1.0
    assert set(r["per_platform"]) == {"satellite", "drone"} and r["place_level"]["R@1"] == 1.0
    assert r["items"] == 6 and r["places"] == 3
    rnd = random_report(data, dim=8, seed=1)
    assert 0.0 <= rnd["overall"]["R@1"] <= 1.0 and rnd["overall"]["R@10"] == 1.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus_path(tmp_path_factory)


@pytest.mark.slow
def test_cli_report_with_ablations(corpus, tmp_path, capsys):
    train = load_pairs(corpus, "train", TINY_SIZE)
    ckpt = save_retrieval_checkpoint(RetrievalModel(get_retrieval_config("tiny"), build_tokenizer(train, True)),
                                     tmp_path / "m")
    out = tmp_path / "report"
    code, stdout, err = run_cli(["evaluate-retrieval", "--corpus", str(corpus), "--checkpoint", str(ckpt), "--out",
                              str(out), "--ablations", "--preset", "tiny", "--stage1-epochs", "1", "--stage2-epochs",
                              "1", "--batch-size", "8", "--quiet"], capsys)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert list(report["systems"]) == ["checkpoint", "checkpoint + place fusion", "full", "no_experts",
                                       "keep_orientation", "one_stage", "random"]
    fused = report["systems"]["checkpoint + place fusion"]
    assert fused["weight"] == PLACE_WEIGHT and fused["radius_m"] == PLACE_RADIUS_M
    assert "place_fusion" not in report["systems"]["checkpoint"]
    assert report["items"] == 6 and report["split"] == "test"
    for r in report["systems"].values():
        assert {"R@1", "R@5", "R@10", "mAP"} <= set(r["overall"]) and r["per_platform"]
    assert report["systems"]["no_experts"]["dim"] == get_retrieval_config("tiny").embed_dim
    assert report["systems"]["full"]["train_epochs"] == 2
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert "| one_stage |" in (out / "report.md").read_text()
    assert "R@1" in stdout


def test_cli_bad_options_exit_2(corpus, tmp_path, capsys):
    bad = [
        ["--corpus", str(corpus), "--checkpoint", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path)],
        ["--corpus", str(corpus), "--checkpoint", str(tmp_path / "m.safetensors"), "--out", str(tmp_path),
         "--split", "everything"],
        ["--corpus", str(tmp_path / "nowhere"), "--checkpoint", str(tmp_path / "m"), "--out", str(tmp_path)],
        ["--corpus", str(corpus), "--out", str(tmp_path), "--ablations", "--split", "train"],
        ["--corpus", str(corpus), "--out", str(tmp_path), "--ablations", "--batch-size", "0"],
        ["--corpus", str(corpus), "--out", str(tmp_path), "--ablations", "--variants", "full,bigger"],
        ["--corpus", str(corpus), "--out", str(tmp_path), "--device", "tpu"],
    ]
    for args in bad:
        code, _, err = run_cli(["evaluate-retrieval", *args, "--quiet"], capsys)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, err)
