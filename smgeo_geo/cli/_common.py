"""Shared CLI plumbing: the user-error boundary."""

from __future__ import annotations

import sys
import warnings

import click

from smgeo_geo.errors import SMGeoError, as_geo_error

EXIT_USER_ERROR = 2


def run_cli(group: click.Group, argv: list[str] | None = None) -> None:
    """Run ``group``; turn user errors into one line ``Error: ...`` on stderr and exit status 2.

    Errors of the model package are shown as the :class:`SMGeoError` they map to. Warnings
    raised by libraries (PIL, numpy, torch, rasterio) while a command runs are held back: a
    command that ends in a user error prints only its error line; one that succeeds prints
    each distinct warning once, as ``Warning: ...``, after its output.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            group.main(args=argv, prog_name="smgeo", standalone_mode=False)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except click.ClickException as exc:  # bad options: click's own message
            exc.show()
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as exc:
            error = as_geo_error(exc)
            if not isinstance(error, SMGeoError):
                raise
            message = " ".join(str(error).split())  # one line, whatever the message holds
            click.echo(f"Error: {message}", err=True)
            sys.exit(EXIT_USER_ERROR)
    seen = set()
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in seen and not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
            seen.add(text)
            click.echo(f"Warning: {' '.join(text.split())}", err=True)
