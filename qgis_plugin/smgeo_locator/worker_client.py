"""Client of the SMGeo worker process (``python -m smgeo_geo.worker``).

QGIS's own Python never imports torch: the model runs in a separate process started
from the project's environment, spoken to with the JSON-lines protocol documented in
``smgeo_geo/worker.py``. This module is plain Python (no Qt), thread-safe: several
QgsTasks may wait on their own requests at once; a reader thread routes each reply to
the request with its id.

If the worker dies, every waiting request fails with :class:`WorkerCrashed` and the next
request starts a new worker (``restarts`` counts them).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
from collections import deque
from typing import Callable

WORKER_MODULE = "smgeo_geo.worker"
PROTOCOL_VERSION = 1


class WorkerError(Exception):
    """A request failed; ``kind`` is the worker's error type (e.g. ``ClickError``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class WorkerUnavailable(WorkerError):
    """The worker cannot be started (no interpreter configured, or the project is not
    installed in it)."""

    def __init__(self, message: str) -> None:
        super().__init__("WorkerUnavailable", message)


class WorkerCrashed(WorkerError):
    """The worker process ended while a request was waiting."""

    def __init__(self, message: str) -> None:
        super().__init__("WorkerCrashed", message)


class RequestCancelled(WorkerError):
    def __init__(self, how: str = "cancelled") -> None:
        super().__init__("Cancelled" if how == "cancelled" else "Superseded",
                         "request cancelled" if how == "cancelled" else "superseded by a newer click")
        self.how = how


ProgressCallback = Callable[[float, str], None]


class WorkerClient:
    """Starts the worker on demand and sends it requests.

    ``python``: interpreter of the environment where ``smgeo-geo`` is installed.
    ``log``: called with each stderr line of the worker and with lifecycle notes.
    """

    def __init__(self, python: str, log: Callable[[str], None] | None = None) -> None:
        self.python = python
        self.log = log or (lambda line: None)
        self.restarts = 0
        self.last_crash: str | None = None
        self._process: subprocess.Popen | None = None
        self._lock = threading.RLock()
        self._pending: dict[int, queue.Queue] = {}
        self._next_id = 1
        self._stderr_tail: deque[str] = deque(maxlen=30)
        self._config: dict | None = None

    # -- process lifecycle ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    def start(self) -> None:
        """Start the worker if it is not running (restart it if it died)."""
        with self._lock:
            if self.running:
                return
            crashed = self._process is not None
            if not self.python or not os.path.isfile(self.python) or not os.access(self.python, os.X_OK):
                raise WorkerUnavailable(
                    f"SMGeo worker Python {self.python or '(not set)'!s} is not an executable file. Set it in "
                    f"SMGeo settings to the python of the environment where smgeo-geo is installed "
                    f"(e.g. <repository>/.venv/bin/python after 'make setup').")
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
            env["PYTHONUNBUFFERED"] = "1"
            self._stderr_tail.clear()
            self._process = subprocess.Popen(
                [self.python, "-m", WORKER_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=env, text=True, encoding="utf-8", bufsize=1,
                start_new_session=True, cwd=tempfile.gettempdir())  # QGIS's cwd must not shadow modules
            proc = self._process
            errors = threading.Thread(target=self._read_stderr, args=(proc,), daemon=True, name="smgeo-client-err")
            errors.start()
            threading.Thread(target=self._read_stdout, args=(proc, errors), daemon=True,
                             name="smgeo-client-out").start()
            if crashed:
                self.restarts += 1
                self.log(f"SMGeo worker restarted (pid {proc.pid}) after: {self.last_crash}")
            else:
                self.log(f"SMGeo worker started (pid {proc.pid}): {self.python} -m {WORKER_MODULE}")
            if self._config is not None:
                self._send("configure", self._config, self._new_id())  # reply ignored (routed nowhere)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not within ``timeout`` seconds."""
        with self._lock:
            proc, self._process = self._process, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.stdin.write(json.dumps({"id": 0, "method": "shutdown"}) + "\n")
                proc.stdin.flush()
                proc.stdin.close()
                proc.wait(timeout)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()

    # -- reading -------------------------------------------------------------------------
    def _read_stdout(self, proc: subprocess.Popen, errors: threading.Thread) -> None:
        """Route the worker's replies; when it exits, report why (with its last stderr lines,
        read to the end first: ``errors`` is the thread reading them)."""
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self.log(f"SMGeo worker wrote a non-protocol line: {line.rstrip()[:200]}")
                continue
            with self._lock:
                box = self._pending.get(message.get("id"))
            if box is not None:
                box.put(message)
            elif message.get("event") == "error":
                self.log(f"SMGeo worker: {message.get('error')}")
        proc.stdout.close()
        code = proc.wait()
        # its stderr ends with it (EOF at once): the last lines say why it exited; the generous
        # timeout is for a machine so loaded that the reading thread waits its turn for seconds
        errors.join(timeout=30.0)
        tail = " | ".join(list(self._stderr_tail)[-5:])
        with self._lock:
            if proc is not self._process and self._process is not None:
                return  # an old process ended after a restart
            expected = self._process is None
            if not expected:
                self.last_crash = f"worker exited with code {code}" + (f"; last output: {tail}" if tail else "")
                self.log(f"SMGeo {self.last_crash}")
            boxes = list(self._pending.values())
        if not expected:
            for box in boxes:
                box.put({"event": "_crashed", "message": self.last_crash})

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            line = line.rstrip()
            if line:
                self._stderr_tail.append(line)
                self.log(line)
        proc.stderr.close()

    # -- requests ------------------------------------------------------------------------
    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def _send(self, method: str, params: dict, request_id: int) -> None:
        line = json.dumps({"id": request_id, "method": method, "params": params})
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except (OSError, ValueError, AttributeError) as exc:
            raise WorkerCrashed(f"SMGeo worker is not accepting requests ({exc}); it will be restarted") from None

    def request(self, method: str, params: dict | None = None, progress: ProgressCallback | None = None,
                on_id: Callable[[int], None] | None = None, timeout: float | None = None) -> dict:
        """Send one request and block until its final reply; returns the ``result``.

        ``progress(fraction, message)`` receives progress replies; ``on_id(id)`` gets the
        request id (to :meth:`cancel` it from another thread). Raises :class:`WorkerError`
        (with the worker's error type), :class:`RequestCancelled`, :class:`WorkerCrashed`
        or :class:`WorkerUnavailable`.
        """
        params = params or {}
        box: queue.Queue = queue.Queue()
        with self._lock:
            self.start()
            request_id = self._new_id()
            self._pending[request_id] = box
            try:
                self._send(method, params, request_id)
            except WorkerCrashed:
                self._pending.pop(request_id, None)
                raise
        if on_id is not None:
            on_id(request_id)
        try:
            while True:
                try:
                    message = box.get(timeout=timeout)
                except queue.Empty:
                    self.cancel(request_id)
                    raise WorkerError("Timeout", f"SMGeo worker gave no answer to '{method}' in {timeout} s") from None
                event = message.get("event")
                if event == "progress" and progress is not None:
                    progress(float(message.get("progress", 0.0)), str(message.get("message", "")))
                elif event == "result":
                    if method == "configure":
                        self._config = dict(params)
                    return message.get("result") or {}
                elif event == "error":
                    err = message.get("error") or {}
                    raise WorkerError(str(err.get("type", "Error")), str(err.get("message", "unknown error")))
                elif event in ("cancelled", "superseded"):
                    raise RequestCancelled(event)
                elif event == "_crashed":
                    raise WorkerCrashed(f"SMGeo {message.get('message')}; it will be restarted on the next request")
        finally:
            with self._lock:
                self._pending.pop(request_id, None)

    def cancel(self, request_id: int) -> None:
        """Cancel a queued or running request (its ``request`` raises RequestCancelled)."""
        with self._lock:
            if self.running:
                try:
                    self._send("cancel", {"target": request_id}, self._new_id())
                except WorkerCrashed:
                    pass

    # -- conveniences --------------------------------------------------------------------
    def hello(self, timeout: float | None = 120) -> dict:
        info = self.request("hello", timeout=timeout)
        if info.get("protocol") != PROTOCOL_VERSION:
            raise WorkerUnavailable(f"SMGeo worker speaks protocol {info.get('protocol')}, "
                                    f"this plugin needs {PROTOCOL_VERSION}: update smgeo-geo or the plugin")
        return info

    def configure(self, checkpoint: str | None, device: str) -> dict:
        return self.request("configure", {"checkpoint": checkpoint or None, "device": device})

    def locate(self, params: dict, progress: ProgressCallback | None = None,
               on_id: Callable[[int], None] | None = None) -> dict:
        return self.request("locate", params, progress, on_id)

    def batch(self, params: dict, progress: ProgressCallback | None = None,
              on_id: Callable[[int], None] | None = None) -> dict:
        return self.request("batch", params, progress, on_id)

    def retrieve(self, text: str, index: str, top_k: int = 10, progress: ProgressCallback | None = None,
                 on_id: Callable[[int], None] | None = None) -> dict:
        """Rank the items of an index folder for a description (the ``retrieve`` op)."""
        return self.request("retrieve", {"text": text, "index": index, "top_k": top_k}, progress, on_id)
