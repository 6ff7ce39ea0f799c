"""Shared CLI plumbing: the user-error boundary."""

from __future__ import annotations

import sys

import click

from smgeo_geo.errors import SMGeoError

EXIT_USER_ERROR = 2


def _user_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [SMGeoError]
    try:  # the model package is optional for commands that do not need it
        from smgeo_model import SMGeoModelError

        types.append(SMGeoModelError)
    except ImportError:  # pragma: no cover - smgeo_model always ships with smgeo_geo
        pass
    return tuple(types)


def run_cli(group: click.Group, argv: list[str] | None = None) -> None:
    """Run ``group``; turn user errors into one line on stderr and exit status 2."""
    try:
        group.main(args=argv, prog_name="smgeo", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # bad options: click's own message
        exc.show()
        sys.exit(exc.exit_code)
    except _user_error_types() as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
