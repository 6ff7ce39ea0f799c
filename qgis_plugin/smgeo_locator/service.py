"""The one worker client of the plugin, shared by the dock and the Processing algorithms."""

from __future__ import annotations

import threading

from qgis.core import Qgis, QgsMessageLog

from .settings import SETUP_HELP, PluginSettings
from .worker_client import WorkerClient, WorkerCrashed, WorkerError, WorkerUnavailable

LOG_TAG = "SMGeo"
_lock = threading.Lock()
_client: WorkerClient | None = None
_configured: tuple | None = None


def log(message: str, level=Qgis.Info) -> None:
    QgsMessageLog.logMessage(message, LOG_TAG, level)


def shared_client(settings: PluginSettings | None = None) -> WorkerClient:
    """The worker client for the current settings; raises :class:`WorkerUnavailable`
    with set-up instructions when no worker Python is found. Thread-safe."""
    global _client, _configured
    settings = settings or PluginSettings.load()
    python = settings.worker_python()
    if not python:
        raise WorkerUnavailable(SETUP_HELP)
    with _lock:
        if _client is None or _client.python != python:
            if _client is not None:
                _client.stop()
            _client = WorkerClient(python, log=log)
            _configured = None
        client = _client
        wanted = (settings.checkpoint or None, settings.device or "cpu")
        needs_configure = _configured != wanted
    if needs_configure:
        try:
            client.configure(*wanted)
        except WorkerUnavailable:
            raise
        except WorkerCrashed as exc:
            raise WorkerUnavailable(f"SMGeo worker ({python}) did not start: {exc}. {SETUP_HELP}") from None
        except WorkerError as exc:
            if "No module named" in str(exc):  # an interpreter without the project's environment
                raise WorkerUnavailable(f"SMGeo worker ({python}) lacks a package: {exc}. {SETUP_HELP}") from None
            raise WorkerUnavailable(f"SMGeo worker could not load the model ({exc.kind}): {exc}. "
                                    f"Check the checkpoint and device in SMGeo settings.") from None
        with _lock:
            _configured = wanted
    return client


def stop_shared_client() -> None:
    global _client, _configured
    with _lock:
        client, _client, _configured = _client, None, None
    if client is not None:
        client.stop()
