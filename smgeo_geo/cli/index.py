"""``smgeo index build``: encode a corpus or a folder of images into a vector index folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("index")
def command() -> None:
    """Vector indexes for `smgeo retrieve` (find images by a description in words)."""


@command.command("build")
@click.option("--corpus", type=click.Path(path_type=Path), default=None,
              help="corpus folder (items.jsonl; made by smgeo synth-retrieval)")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="index only this split of --corpus (default: all items)")
@click.option("--images", type=click.Path(path_type=Path), default=None,
              help="folder of GeoTIFF tiles (satellite) and JPEG photos with EXIF GPS (drone / ground), recursive")
@click.option("--photo-platform", type=click.Choice(["auto", "drone", "ground"]), default="auto", show_default=True,
              help="platform of the --images photos; auto: from their metadata (height above take-off, camera "
                   "angles, camera maker)")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="retrieval checkpoint (.safetensors + .json; made by smgeo train-retrieval) "
                   "[default: the bundled demo retrieval model]")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="index folder to write (new, empty, or an index to replace)")
@click.option("--kind", type=click.Choice(["auto", "flat", "hnsw"]), default="auto", show_default=True,
              help="flat: exact search; hnsw: approximate, fast on large indexes; auto: flat up to 100,000 items")
@click.option("--batch-size", type=int, default=32, show_default=True, help="images per model call")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda")
def build(corpus, split, images, photo_platform, checkpoint, out, kind, batch_size, device) -> None:
    """Build a vector index of satellite tiles, drone photos and ground photos.

    Every image is encoded once by the model of --checkpoint; `smgeo retrieve` then ranks
    them for a description in words. Items of a corpus keep their platform, position and
    footprint; in an --images folder a GeoTIFF is a satellite tile placed by its raster
    bounds (reprojected to WGS84) and a JPEG a drone or ground photo placed by its EXIF GPS
    (photos without GPS are skipped with a warning). Thumbnails go to OUT/thumbs/.

    \b
    Example:
      smgeo index build --corpus corpus/ --split test --checkpoint runs/ret/best.safetensors --out idx/
      smgeo index build --images survey/ --checkpoint runs/ret/best.safetensors --out survey_idx/ --kind hnsw
    """
    from tqdm.auto import tqdm

    from smgeo_geo.predictor import check_device
    from smgeo_retrieval.api import build_index
    from smgeo_retrieval.index import check_index_folder
    from smgeo_retrieval.sources import CorpusSource, ImageFolder

    if corpus is None and images is None:
        raise click.UsageError("give --corpus CORPUS_DIR and/or --images DIR")
    if split is not None and corpus is None:
        raise click.UsageError("--split needs --corpus")
    if batch_size < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--batch-size")
    check_device(device)
    root = check_index_folder(out, "--out")
    for name, folder in (("--corpus", corpus), ("--images", images)):
        if folder is not None and folder.resolve() == root.resolve():
            raise click.BadParameter(f"{out} is the {name} folder; writing the index there would mix it with "
                                     f"the input", param_hint="--out")
    sources = ([CorpusSource(corpus, split)] if corpus is not None else []) + \
              ([ImageFolder(images, photo_platform)] if images is not None else [])
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="encoding", unit="img")
        bar.update(done - bar.n)

    if checkpoint is None:
        from smgeo_retrieval.checkpoint import bundled_retrieval_checkpoint

        checkpoint = bundled_retrieval_checkpoint()
    try:
        report = build_index(sources, checkpoint, out, progress=progress, kind=kind, device=device,
                             batch_size=batch_size)
    finally:
        if bar is not None:
            bar.close()
    index = report.index
    counts = ", ".join(f"{p} {n}" for p, n in index.metadata()["platforms"].items())
    click.echo(f"indexed {index.count} items ({counts}) in {report.seconds:.1f} s: {index.kind} index, "
               f"dimension {index.dim}, model {index.model['model_id']} -> {index.root}")
