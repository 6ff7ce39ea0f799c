"""How well could any model retrieve on a generated corpus? Two ceilings, measured in one run.

The retrieval target (Recall@1 >= 0.6, Recall@10 >= 0.95 on a held-out corpus) asks a model to
read a place's kind, colours, roof, size and neighbours from small images. These ceilings
replace the image model with perfect knowledge, to tell what the corpus itself allows:

* ``caption_reader``: each item is represented by its own ``caption`` (what an image model
  that read everything its image's place holds would say), each query by its ``query``; both
  after the model's preprocessing (orientation words removed, normalised) without the
  platform openings; scored by TF-IDF cosine over words and word pairs. A perfect gate is
  assumed (items of the query's platform first). Bag-of-words: relations and which noun a
  colour belongs to are only seen through word pairs.
* ``attributes`` / ``target_only``: items scored 1 when their place has exactly the query's
  place attributes (every attribute the captions state: :meth:`Place.attribute_tuple`), or
  only the target's and its first neighbour's (:meth:`Place.core_tuple`); ties in random order
  (seeded). The places are rebuilt from the corpus seed (:func:`seeded_place`).

Relevant items: same place and platform, as ``smgeo evaluate-retrieval``.

    python bench/retrieval_ceilings.py CORPUS [--split test] --json bench/results/retrieval_ceilings_seed7.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from smgeo_retrieval.corpus.build import seeded_place
from smgeo_retrieval.corpus.captions import CAPTION_OPENINGS, PLATFORM_OPENINGS
from smgeo_retrieval.corpus_io import read_corpus
from smgeo_retrieval.metrics import ranking_metrics, relevance
from smgeo_retrieval.model import prepare_text

ARTICLES = {"a", "an", "the", "of", "with", "and", "it", "is", "its", "there"}


def opening_words() -> set[str]:
    """Words of the platform openings and caption openings: they name the platform, not the place."""
    texts = [t for v in PLATFORM_OPENINGS.values() for t in v] + list(CAPTION_OPENINGS)
    return {w for t in texts for w in prepare_text(t, True).split()} | ARTICLES


def grams(text: str, drop: set[str]) -> list[str]:
    words = [w for w in prepare_text(text, True).split() if w not in drop]
    return words + [f"{a}_{b}" for a, b in zip(words, words[1:])]


def tfidf(docs: list[list[str]], queries: list[list[str]]) -> np.ndarray:
    """Cosine of TF-IDF vectors, ``[len(queries), len(docs)]``."""
    vocab: dict[str, int] = {}
    for d in docs + queries:
        for g in d:
            vocab.setdefault(g, len(vocab))

    def matrix(rows: list[list[str]]) -> np.ndarray:
        m = np.zeros((len(rows), len(vocab)), np.float32)
        for r, row in enumerate(rows):
            for g in row:
                m[r, vocab[g]] += 1
        return m

    d, q = matrix(docs), matrix(queries)
    df = ((d > 0).sum(0) + (q > 0).sum(0)).astype(np.float32)
    idf = np.log((len(docs) + len(queries) + 1) / (df + 1)) + 1
    d, q = d * idf, q * idf
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
    q /= np.linalg.norm(q, axis=1, keepdims=True) + 1e-9
    return q @ d.T


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0, help="tie-breaking order")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    meta, items = read_corpus(args.corpus)
    items = [it for it in items if it.split == args.split]
    platforms = [it.platform for it in items]
    rel = relevance([it.place_id for it in items], platforms, [it.place_id for it in items], platforms)
    same_platform = np.array(platforms)[:, None] == np.array(platforms)[None, :]
    jitter = np.random.default_rng(args.seed).random(rel.shape) * 1e-3

    drop = opening_words()
    reader = tfidf([grams(it.caption, drop) for it in items], [grams(it.query, drop) for it in items])
    places = {p: seeded_place(meta["seed"], int(p[1:]))[0] for p in sorted({it.place_id for it in items})}
    full = [repr(places[it.place_id].attribute_tuple()) for it in items]
    core = [repr(places[it.place_id].core_tuple()) for it in items]

    def equal(keys: list[str]) -> np.ndarray:
        k = np.array(keys)
        return (k[:, None] == k[None, :]).astype(np.float32)

    results = {}
    for name, scores in (("caption_reader", reader), ("attributes", equal(full)), ("target_only", equal(core))):
        s = scores + 10.0 * same_platform + jitter
        results[name] = {"overall": ranking_metrics(s, rel),
                         "per_platform": {p: ranking_metrics(s[np.array(platforms) == p], rel[np.array(platforms) == p])
                                          for p in meta["platforms"]}}
    unique = Counter(repr(places[p].attribute_tuple()) for p in places)
    report = {"corpus": str(args.corpus), "split": args.split, "items": len(items), "places": len(places),
              "places_with_unique_attributes": sum(1 for p in places if unique[repr(places[p].attribute_tuple())] == 1)
              / len(places), "ceilings": results}
    for name, r in results.items():
        o = r["overall"]
        print(f"{name:15s} R@1 {100 * o['R@1']:5.1f}  R@5 {100 * o['R@5']:5.1f}  R@10 {100 * o['R@10']:5.1f}  "
              f"mAP {100 * o['mAP']:5.1f}   " + "  ".join(
                  f"{p} {100 * v['R@1']:.1f}/{100 * v['R@10']:.1f}" for p, v in r["per_platform"].items()))
    print(f"places with unique attributes: {100 * report['places_with_unique_attributes']:.1f} %")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
