"""QgsTasks that run worker requests in the background, with progress and Cancel.

Rules kept here: inputs are plain values copied on the main thread before the task
starts; ``run()`` (a worker thread) only talks to the worker process; layers are added and
files written by the ``done`` callback, which QGIS calls on the main thread via
``finished()``.
"""

from __future__ import annotations

from typing import Callable

from qgis.core import Qgis, QgsMessageLog, QgsTask

from .worker_client import RequestCancelled, WorkerClient, WorkerError

LOG_TAG = "SMGeo"


class WorkerTask(QgsTask):
    """Send one request (``method``, ``params``) to the worker; call
    ``done(task)`` on the main thread when it ends (``task.result`` or ``task.error``).

    ``client`` is a callable returning the :class:`WorkerClient`; it is called in ``run()``
    because starting the worker and loading the model take seconds. ``prepare``, if given,
    runs first in ``run()`` (e.g. writing a tile layer's snapshot; it may raise WorkerError)."""

    def __init__(self, description: str, client: Callable[[], WorkerClient], method: str, params: dict,
                 done: Callable[["WorkerTask"], None] | None = None,
                 prepare: tuple[str, Callable[[], object]] | None = None) -> None:
        super().__init__(description, QgsTask.CanCancel)
        self.client_factory = client
        self.client: WorkerClient | None = None
        self.method = method
        self.params = dict(params)
        self.done = done
        self.prepare = prepare
        self.result: dict | None = None
        self.error: WorkerError | None = None
        self.stage = ""  # what the worker is doing (progress text)
        self.request_id: int | None = None
        self.cancelled_by_worker = False
        self.cancelled_by_user = False  # set by the dock's Cancel: the answer, whenever it comes, is dropped
        self.ended = False  # set by finished(); stays readable after QGIS deletes the C++ task

    def _progress(self, fraction: float, message: str) -> None:
        self.stage = message
        self.setProgress(max(0.0, min(100.0, 100.0 * fraction)))

    def _on_id(self, request_id: int) -> None:
        self.request_id = request_id
        if self.isCanceled() and self.client is not None:
            self.client.cancel(request_id)

    def run(self) -> bool:
        try:
            self.setProgress(1.0)
            if self.prepare is not None:
                self.stage, step = self.prepare
                step()
                if self.isCanceled():
                    raise RequestCancelled()
            self.stage = "starting SMGeo worker"
            self.client = self.client_factory()
            if self.isCanceled():
                raise RequestCancelled()
            self.result = self.client.request(self.method, self.params, self._progress, self._on_id)
            return True
        except RequestCancelled as exc:
            self.cancelled_by_worker = True
            self.error = exc
            return False
        except WorkerError as exc:
            self.error = exc
            return False
        except Exception as exc:  # never let an exception escape into QGIS's task manager
            self.error = WorkerError("InternalError", f"{type(exc).__name__}: {exc}")
            return False

    def cancel(self) -> None:
        if self.request_id is not None and self.client is not None:
            self.client.cancel(self.request_id)
        super().cancel()

    def finished(self, ok: bool) -> None:
        self.ended = True
        if self.error is not None and not isinstance(self.error, RequestCancelled):
            QgsMessageLog.logMessage(f"{self.description()}: {self.error.kind}: {self.error}", LOG_TAG,
                                     Qgis.Warning)
        if self.done is not None:
            self.done(self)
