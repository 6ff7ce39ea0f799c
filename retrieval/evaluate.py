"""Evaluation of text-to-image retrieval (``smgeo evaluate-retrieval``).

Queries are the ``query`` texts of the evaluated items; the gallery is every evaluated item
(all platforms). A query is relevant to the items of its place **and** platform (the
primary metrics: ``overall`` and ``per_platform``, by the query's platform); ``place_level``
counts any item of the place. Metrics: Recall@1/5/10 and mAP (:mod:`.metrics`).

Ablations (:func:`run_ablations`) train each variant with the same budget on the same
training split and score them side by side with a random baseline (random unit vectors).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from smgeo_retrieval.metrics import ranking_metrics, relevance
from smgeo_retrieval.place_fusion import PLACE_WEIGHT, PlaceNeighbours, fused_scores
from smgeo_retrieval.train_data import PairData

ABLATIONS: tuple[str, ...] = ("full", "no_experts", "keep_orientation", "one_stage")
EXTRA_ABLATIONS: tuple[str, ...] = ("route_all", "no_word_head")
RANDOM = "random"
RANDOM_DIM = 128
DESCRIPTIONS = {
    "checkpoint": "the given checkpoint",
    "full": "experts + gate, orientation words removed, two stages (hard negatives)",
    "no_experts": "one shared head, no gate",
    "keep_orientation": "orientation words kept in training and queries",
    "one_stage": "in-batch negatives only (stage-1 epochs = both stages' epochs)",
    "route_all": "item vectors keep every expert's block (score sums over all experts)",
    "no_word_head": "without the auxiliary word loss",
    RANDOM: "random unit vectors",
}
PLACE_FUSION = "checkpoint + place fusion"
DESCRIPTIONS[PLACE_FUSION] = ("the checkpoint, each item's score joined by its neighbours' (items within "
                              "PLACE_RADIUS_M): what `smgeo retrieve` ranks by")


def score_report(queries: np.ndarray, items: np.ndarray, data: PairData) -> dict:
    """Metrics of query vectors ``[N, D]`` (one per item of ``data``) against item vectors ``[N, D]``."""
    return scores_report(queries.astype(np.float32) @ items.astype(np.float32).T, data)


def scores_report(scores: np.ndarray, data: PairData) -> dict:
    """Metrics of a score matrix ``[N queries, N items]`` (queries and gallery: the items of ``data``)."""
    places, platforms = data.place_ids, data.platforms
    strict = relevance(places, platforms, places, platforms)
    loose = relevance(places, None, places, None)
    report = {"items": len(data), "places": len(set(places)), "overall": ranking_metrics(scores, strict),
              "place_level": ranking_metrics(scores, loose), "per_platform": {}}
    for p in sorted(set(platforms), key=lambda p: ("satellite", "drone", "ground").index(p)
                    if p in ("satellite", "drone", "ground") else 9):
        rows = np.array([x == p for x in platforms])
        report["per_platform"][p] = ranking_metrics(scores[rows], strict[rows])
    return report


def evaluate_model(model, data: PairData) -> dict:
    """Full report of ``model`` on ``data`` (plus the gate's platform accuracy and seconds)."""
    from smgeo_retrieval.model import gated_queries

    t0 = time.time()
    experts, g = model.encode_query_experts(data.queries)  # one pass of the text encoder serves all below
    q = gated_queries(experts, g)
    v = model.encode_images(data.images, data.platforms)
    report = score_report(q, v, data)
    report["place_fusion"] = place_fusion_report(model, data, v, experts, g)
    if model.config.experts:
        truth = np.array([model.config.platforms.index(p) for p in data.platforms])
        report["gate_accuracy"] = float((g.argmax(1) == truth).mean())
    report["dim"] = int(q.shape[1])
    report["encode_seconds"] = round(time.time() - t0, 2)
    return report


def place_fusion_report(model, data: PairData, items: np.ndarray, u: np.ndarray, gates: np.ndarray) -> dict:
    """The metrics with place fusion (:mod:`.place_fusion`): each item's score joined by its
    neighbours' (items within ``PLACE_RADIUS_M`` of it by their lon/lat); ``items``: the
    item vectors of ``data``; ``u``, ``gates``: its queries' :meth:`encode_query_experts`."""
    heads = list(model.config.platforms) if model.config.experts else [None]
    column = np.array([heads.index(p) if model.config.experts else 0 for p in data.platforms], np.int64)
    neighbours = PlaceNeighbours([it.lon for it in data.items], [it.lat for it in data.items])
    fused = fused_scores(u @ items.T, gates[:, column], neighbours.of(np.arange(len(data))))
    report = scores_report(fused, data)
    report.update(weight=PLACE_WEIGHT, radius_m=neighbours.radius_m)
    return report


def evaluate_pairs(model, data: PairData) -> dict:
    """Flat validation metrics used during training (``R@1``, ``R@5``, ``R@10``, ``mAP``, ``place_R@1``)."""
    r = evaluate_model(model, data)
    return {**{k: r["overall"][k] for k in ("R@1", "R@5", "R@10", "mAP")}, "place_R@1": r["place_level"]["R@1"]}


def random_report(data: PairData, dim: int = RANDOM_DIM, seed: int = 0) -> dict:
    """The report of random unit vectors (the chance level of every metric)."""
    rng = np.random.default_rng(seed)

    def unit(n: int) -> np.ndarray:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    report = score_report(unit(len(data)), unit(len(data)), data)
    report["dim"] = dim
    return report


def run_ablations(base, train_data: PairData, val_data: PairData | None, eval_data: PairData, out_dir: Path,
                  names: tuple[str, ...] = ABLATIONS, progress: bool = True,
                  log: Callable[[str], None] = print) -> dict[str, dict]:
    """Train every variant of ``names`` with ``base``'s budget (under ``out_dir/<name>``,
    resumable) and evaluate it on ``eval_data``; adds the random baseline."""
    from smgeo_retrieval.train import ablation_options, train_retrieval

    reports: dict[str, dict] = {}
    for name in names:
        opts = ablation_options(base, name, Path(out_dir) / name)
        log(f"ablation {name}: {DESCRIPTIONS[name]}")
        result = train_retrieval(opts, train_data, val_data, progress=progress, log=log)
        from smgeo_retrieval.checkpoint import load_retrieval_checkpoint

        model = load_retrieval_checkpoint(result.checkpoint, device="cpu")
        report = evaluate_model(model, eval_data)
        report["train_seconds"] = round(result.seconds, 1)
        report["train_epochs"] = model.checkpoint_metadata.get("epoch")
        report["checkpoint"] = str(result.checkpoint)
        reports[name] = report
    reports[RANDOM] = random_report(eval_data, seed=base.seed)
    return reports


__all__ = ["ABLATIONS", "DESCRIPTIONS", "EXTRA_ABLATIONS", "PLACE_FUSION", "RANDOM", "evaluate_model", "evaluate_pairs",
           "place_fusion_report", "random_report", "run_ablations", "score_report", "scores_report"]
