"""``smgeo retrieve``: rank the items of a vector index for a description in words."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("retrieve")
@click.option("--text", required=True, help="what to find, in words (e.g. 'a red roof beside a round pond')")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), required=True,
              help="index folder made by smgeo index build")
@click.option("--top-k", type=int, default=10, show_default=True, help="results to keep (1 to 100)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the hits: .geojson (WGS84 points / footprint polygons) or .gpkg (layers hits, footprints)")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="the index's model at another path (default: the checkpoint recorded in the index)")
@click.option("--ef-search", type=int, default=None,
              help="HNSW indexes: candidates examined per query (more: closer to exact, slower) "
                   "[default: the index's own; a flat index is exact and ignores it]")
@click.option("--place-fusion/--no-place-fusion", default=True, show_default=True,
              help="rank again with each hit's neighbours within 200 m: views of a place that match the "
                   "description too make it more likely (scores are then the fused ones)")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda")
def command(text, index_dir, top_k, out, checkpoint, ef_search, place_fusion, device) -> None:
    """Find the satellite tiles, drone photos and ground photos that match a description.

    Prints the ranked hits (rank, score, platform, lon/lat, image) and, with --out, writes
    them as GeoJSON or GeoPackage with the image and thumbnail paths as attributes.

    \b
    Example:
      smgeo retrieve --text "a white church with a red roof next to a parking lot" \\
                     --index idx/ --top-k 5 --out hits.geojson
    """
    from smgeo_geo.checks import check_top_k
    from smgeo_geo.cli._options import check_outputs
    from smgeo_geo.predictor import check_device
    from smgeo_retrieval.api import Retriever, check_text, checkpoint_files
    from smgeo_retrieval.hits import check_hits_path, write_hits
    from smgeo_retrieval.index import INDEX_FILES, check_ef_search

    # every check that needs no model comes first
    text = check_text(text)
    top_k = check_top_k(top_k)
    ef_search = check_ef_search(ef_search)
    check_device(device)
    if out is not None:
        check_hits_path(out)
        inputs = {f"--index {name}": index_dir / name for name in INDEX_FILES}
        if checkpoint is not None:
            weights, config = checkpoint_files(checkpoint)
            inputs.update({"--checkpoint": weights, "--checkpoint config": config})
        check_outputs({"--out": out}, inputs)
    retriever = Retriever.open(index_dir, checkpoint, device=device)
    hits = retriever.search(text, top_k, ef_search, place_fusion=place_fusion)
    click.echo(f"{'rank':>4}  {'score':>8}  {'platform':<9}  {'lon':>12}  {'lat':>11}  item / image")
    for h in hits:
        click.echo(f"{h.rank:>4}  {h.score:>8.4f}  {h.platform:<9}  {h.lon:>12.7f}  {h.lat:>11.7f}  "
                   f"{h.item_id}  {h.image}")
    if out is not None:
        write_hits(hits, out, query=text, model_id=retriever.model_id)
        click.echo(f"wrote {out}")
