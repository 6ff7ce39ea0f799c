"""The ``smgeo`` command line: thin commands over the library.

One module per command (``smgeo_geo/cli/<name>.py``, each exporting ``command``);
:func:`main` is the console entry point. User errors (:class:`~smgeo_geo.errors.SMGeoError`
and :class:`smgeo_model.CheckpointError`) print one line ``Error: ...`` and exit with
status 2, without a traceback.
"""

from __future__ import annotations

import importlib

import click

from smgeo_geo.cli._common import run_cli

# command name -> module under smgeo_geo.cli; modules are imported only when used,
# so `smgeo --help` stays fast and a broken optional command cannot break the others.
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "demo-retrieval": "demo_retrieval",
    "locate": "locate",
    "batch": "batch",
    "synth": "synth",
    "realpairs": "realpairs",
    "adapt": "adapt",
    "train": "train",
    "evaluate": "evaluate",
    "synth-retrieval": "synth_retrieval",
    "index": "index",
    "retrieve": "retrieve",
    "train-retrieval": "train_retrieval",
    "evaluate-retrieval": "evaluate_retrieval",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, mod in COMMANDS.items() if _module_exists(mod))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _module_exists(COMMANDS[name]):
            return None
        return importlib.import_module(f"smgeo_geo.cli.{COMMANDS[name]}").command


def _module_exists(mod: str) -> bool:
    return importlib.util.find_spec(f"smgeo_geo.cli.{mod}") is not None


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smgeo-geo")
def cli() -> None:
    """SMGeo-Geo: find the object clicked in a drone photo on a georeferenced satellite image.

    \b
    Example:
      smgeo demo --out demo_output/
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point (``smgeo``)."""
    run_cli(cli, argv)
