"""What every tab of the panel runs its work with: a run and a cancel button, a progress bar
(0-100), a selectable status line, and the one task running (the latest request wins)."""

from __future__ import annotations

from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from .worker_client import RequestCancelled


class RunControls:
    """The controls, added to ``layout`` (a vertical layout of ``parent``), and the running task.

    ``notify(text, level)`` reports a worker restart. Outcomes of :meth:`finish`: ``"stale"``
    (a cancelled or superseded task: drop its answer), ``"cancelled"``, ``"failed"`` (the caller
    says why) or ``"ok"``.
    """

    def __init__(self, layout, parent: QWidget, run_text: str, on_run, on_cancel, notify, status: str = "") -> None:
        self.notify = notify
        self.task = None
        self.restarts_seen = 0
        buttons = QHBoxLayout()
        self.run_button = QPushButton(run_text, parent)
        self.run_button.clicked.connect(on_run)
        self.cancel_button = QPushButton("Cancel", parent)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(on_cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress = QProgressBar(parent)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.status_label = QLabel(status, parent)
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.status_label)

    def start(self, task, status: str) -> None:
        """Run ``task`` (a running one is cancelled first) and say ``status``."""
        if self.task is not None:
            self.cancel()
        task.progressChanged.connect(lambda value, t=task: self._progress(t, value))
        self.task = task
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self.status_label.setText(status)
        QgsApplication.taskManager().addTask(task)

    def cancel(self) -> None:
        """Cancel the running task; its answer, whenever it comes, is dropped."""
        task, self.task = self.task, None
        if task is None:
            return
        task.cancelled_by_user = True
        self.cancel_button.setEnabled(False)
        self.progress.setValue(0)
        self.status_label.setText("cancelled")
        if not task.ended:
            task.cancel()

    def _progress(self, task, value: float) -> None:
        if task is self.task:
            self.progress.setValue(int(value))
            if task.stage:
                self.status_label.setText(task.stage)

    def finish(self, task) -> str:
        """Book a finished ``task`` and say what became of it (see the class docstring)."""
        if task is not self.task:
            return "stale"
        self.task = None
        self.cancel_button.setEnabled(False)
        client = task.client
        if client is not None and client.restarts > self.restarts_seen:
            self.restarts_seen = client.restarts
            self.notify(f"The SMGeo worker had stopped ({client.last_crash}) and was restarted.", Qgis.Warning)
        if task.result is not None:
            return "ok"
        self.progress.setValue(0)
        if isinstance(task.error, RequestCancelled) or task.isCanceled():
            self.status_label.setText("cancelled")
            return "cancelled"
        return "failed"
