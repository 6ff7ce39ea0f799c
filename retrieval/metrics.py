"""Ranking metrics of retrieval (numpy only): Recall@K and mean average precision.

``scores [Q, N]`` (higher is better) and ``relevant [Q, N]`` (bool). Items are ranked by
score, ties broken by gallery order (stable sort). A query with no relevant item is left out
of every mean (and counted in ``skipped``).

* Recall@K: share of queries with at least one relevant item among the top K;
* AP of a query: mean over its relevant items of the precision at each one's rank;
  mAP: mean AP over queries.
"""

from __future__ import annotations

import numpy as np

KS: tuple[int, ...] = (1, 5, 10)
CHUNK = 1024  # queries ranked at a time (memory: CHUNK x N)


def first_relevant_ranks(scores: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rank of the first relevant item, AP)`` per query (0-based ranks; -1 and NaN when none)."""
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if scores.shape != relevant.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and relevant {relevant.shape} must be the same [Q, N] shape")
    q = scores.shape[0]
    first = np.full(q, -1, dtype=np.int64)
    ap = np.full(q, np.nan)
    for s in range(0, q, CHUNK):
        order = np.argsort(-scores[s: s + CHUNK], axis=1, kind="stable")
        rel = np.take_along_axis(relevant[s: s + CHUNK], order, axis=1)
        hits = np.cumsum(rel, axis=1)
        n_rel = rel.sum(1)
        ranks = np.arange(1, rel.shape[1] + 1)
        prec_sum = (rel * hits / ranks).sum(1)
        has = n_rel > 0
        first[s: s + CHUNK] = np.where(has, rel.argmax(1), -1)
        ap[s: s + CHUNK] = np.where(has, prec_sum / np.maximum(n_rel, 1), np.nan)
    return first, ap


def ranking_metrics(scores: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...] = KS) -> dict:
    """``{"R@1": .., "R@5": .., "R@10": .., "mAP": .., "queries": n, "skipped": m}`` (fractions)."""
    first, ap = first_relevant_ranks(scores, relevant)
    valid = first >= 0
    n = int(valid.sum())
    out: dict = {}
    for k in ks:
        out[f"R@{k}"] = float(((first >= 0) & (first < k)).sum() / n) if n else 0.0
    out["mAP"] = float(np.nanmean(ap)) if n else 0.0
    out["queries"] = n
    out["skipped"] = int((~valid).sum())
    return out


def relevance(query_places: list[str], query_platforms: list[str] | None, item_places: list[str],
              item_platforms: list[str] | None) -> np.ndarray:
    """``[Q, N]`` bool: same place (and, when platforms are given, same platform)."""
    codes: dict[str, int] = {}
    qp = np.array([codes.setdefault(p, len(codes)) for p in query_places])
    ip = np.array([codes.setdefault(p, len(codes)) for p in item_places])
    rel = qp[:, None] == ip[None, :]
    if query_platforms is not None and item_platforms is not None:
        pc: dict[str, int] = {}
        qf = np.array([pc.setdefault(p, len(pc)) for p in query_platforms])
        jf = np.array([pc.setdefault(p, len(pc)) for p in item_platforms])
        rel &= qf[:, None] == jf[None, :]
    return rel


__all__ = ["KS", "first_relevant_ranks", "ranking_metrics", "relevance"]
