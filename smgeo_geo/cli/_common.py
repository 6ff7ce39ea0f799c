"""Shared CLI plumbing: the user-error boundary."""

from __future__ import annotations

import sys
import warnings

import click

from smgeo_geo.errors import SMGeoError, as_geo_error

EXIT_USER_ERROR = 2


def run_cli(group: click.Group, argv: list[str] | None = None) -> None:
    """Run ``group``; turn user errors into one line ``Error: ...`` on stderr and exit status 2.

    User errors are :class:`SMGeoError` (errors of the model package are shown as the
    :class:`SMGeoError` they map to) and click's errors for bad or missing options (shown
    on one line, with a pointer to ``--help``; no usage block). Warnings
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
        except click.exceptions.NoArgsIsHelpError as exc:  # `smgeo` alone: the help text
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:  # bad options: click's message, on one line like ours
            _error_line(exc.format_message(), f"see '{exc.ctx.command_path} --help'"
                        if isinstance(exc, click.UsageError) and exc.ctx is not None else "")
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as exc:
            error = as_geo_error(exc)
            if not isinstance(error, SMGeoError):
                raise
            _error_line(str(error))
    seen = set()
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in seen and not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
            seen.add(text)
            click.echo(f"Warning: {' '.join(text.split())}", err=True)


def _error_line(message: str, hint: str = "") -> None:
    """Print ``Error: message`` as one line (whatever the message holds) and exit with status 2."""
    text = " ".join(message.split()) or "unknown error"
    click.echo(f"Error: {text}{f' ({hint})' if hint else ''}", err=True)
    sys.exit(EXIT_USER_ERROR)
