"""``smgeo demo-retrieval``: find places by description with the bundled retrieval model.

A small captioned corpus of places the bundled model never saw (its own seed) is generated,
indexed with the bundled retrieval model, and searched with the platform-specific query of
a few of its items; the hits go to GeoJSON and a contact sheet (PNG) shows each query with its
top hits, the right place framed in green. The index stays, so `smgeo retrieve` can be tried on
it at once.
"""

from __future__ import annotations

from pathlib import Path

import click

DEMO_SEED = 90_210  # not a training, validation or evaluation seed of the bundled model
DEMO_PLACES = 40
DEMO_QUERIES = 4
TOP_K = 5


@click.command("demo-retrieval")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_output") / "retrieval",
              show_default=True, help="folder for the demo corpus, index and outputs")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="retrieval checkpoint [default: the bundled demo model]")
@click.option("--quiet", is_flag=True, help="no progress bars")
def command(out: Path, checkpoint, quiet) -> None:
    """Find places by description: index a generated corpus and search it with words.

    \b
    Example:
      smgeo demo-retrieval --out demo_output/retrieval
      smgeo retrieve --index demo_output/retrieval/index --text "a drone photo of a red warehouse" --top-k 5
    """
    from smgeo_geo.cli._options import check_output_folder
    from smgeo_retrieval.api import Retriever, build_index
    from smgeo_retrieval.checkpoint import bundled_retrieval_checkpoint
    from smgeo_retrieval.corpus import CorpusOptions, generate_corpus
    from smgeo_retrieval.corpus_io import read_corpus
    from smgeo_retrieval.hits import write_hits
    from smgeo_retrieval.sources import CorpusSource

    check_output_folder("--out", out)
    checkpoint = checkpoint or bundled_retrieval_checkpoint()
    corpus = out / "corpus"
    if not (corpus / "corpus.json").is_file():
        click.echo(f"generating {DEMO_PLACES} places (seed {DEMO_SEED}) in {corpus} ...")
        generate_corpus(corpus, CorpusOptions(places=DEMO_PLACES, seed=DEMO_SEED, splits=(0.0, 0.0, 1.0)),
                        overwrite=True, progress=not quiet)
    report = build_index([CorpusSource(corpus)], checkpoint, out / "index")
    click.echo(f"indexed {report.index.count} items in {report.seconds:.1f} s -> {out / 'index'}")
    _, items = read_corpus(corpus)
    retriever = Retriever.open(out / "index", checkpoint)
    by_id = {it.item_id: it for it in items}
    # one query per platform first, then more: the demo shows every kind of description
    chosen = []
    for platform in ("satellite", "drone", "ground", "drone"):
        chosen += [it for it in items if it.platform == platform and it not in chosen][:1]
    rows, found = [], 0
    for n, item in enumerate(chosen[:DEMO_QUERIES], 1):
        hits = retriever.search(item.query, TOP_K)
        right = [by_id[h.item_id].place_id == item.place_id and h.platform == item.platform for h in hits]
        found += bool(right and right[0])
        write_hits(hits, out / f"hits_{n}.geojson", query=item.query, model_id=retriever.model_id)
        click.echo(f"\n[{n}] {item.query}")
        for h, ok in zip(hits, right):
            click.echo(f"  #{h.rank} {h.score:7.3f} {h.platform:<9} {h.lon:11.6f} {h.lat:10.6f} "
                       f"{'<- the place described' if ok else ''}")
        rows.append((item.query, hits, right))
    sheet = _contact_sheet(rows, out / "retrieval_demo.png")
    click.echo(f"\nright place and platform first for {found} of {len(rows)} queries; hits_N.geojson and {sheet} "
               f"in {out}")


def _contact_sheet(rows, path: Path) -> Path:
    """One row per query: its text, then the top hits' thumbnails (green frame: the place and
    platform described)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from smgeo_geo.figures import _save

    cols = max(len(h) for _, h, _ in rows)
    fig, axes = plt.subplots(len(rows), cols + 1, figsize=(2.0 * (cols + 1.6), 2.1 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.6] + [1] * cols})
    for r, (query, hits, right) in enumerate(rows):
        axes[r, 0].text(0, 0.5, "\n".join(textwrap.wrap(query, 30)), fontsize=7, va="center")
        axes[r, 0].axis("off")
        for c in range(cols):
            ax = axes[r, c + 1]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(hits):
                ax.axis("off")
                continue
            h = hits[c]
            if h.thumbnail:
                ax.imshow(Image.open(h.thumbnail).convert("RGB"))
            ax.set_title(f"#{h.rank} {h.platform} {h.score:.2f}", fontsize=7)
            for side in ax.spines.values():
                side.set_color("#2ca02c" if right[c] else "#999999")
                side.set_linewidth(3 if right[c] else 1)
    return _save(fig, path)
