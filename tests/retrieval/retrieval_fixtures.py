"""A tiny generated retrieval corpus shared by the model, training and evaluation tests."""

from __future__ import annotations

from pathlib import Path

TINY_PLACES, TINY_SIZE = 10, 32


def tiny_corpus_path(tmp_path_factory) -> Path:
    """A 10-place corpus (32 px, 1 drone + 1 ground view per place; 6/2/2 places train/val/test),
    generated once per test session."""
    from smgeo_retrieval.corpus import CorpusOptions, generate_corpus

    folder = tmp_path_factory.getbasetemp() / "retrieval_tiny_corpus"
    if not (folder / "items.jsonl").is_file():
        generate_corpus(folder, CorpusOptions(places=TINY_PLACES, seed=0, image_size=TINY_SIZE, drone_views=1,
                                              ground_views=1, splits=(0.6, 0.2, 0.2)),
                        workers=1, overwrite=True, progress=False)
    return folder
