"""The controls every tab of the panel runs its work with: a run and a cancel button, a
progress bar (0-100) and a selectable, wrapping status line."""

from __future__ import annotations

from dataclasses import dataclass

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


@dataclass
class RunControls:
    run_button: QPushButton
    cancel_button: QPushButton
    progress: QProgressBar
    status_label: QLabel


def add_run_controls(layout, parent: QWidget, run_text: str, on_run, on_cancel, status: str = "") -> RunControls:
    """Add the controls to ``layout`` (a vertical layout of ``parent``); the cancel button starts
    disabled (enable it while a task runs)."""
    buttons = QHBoxLayout()
    run_button = QPushButton(run_text, parent)
    run_button.clicked.connect(on_run)
    cancel_button = QPushButton("Cancel", parent)
    cancel_button.setEnabled(False)
    cancel_button.clicked.connect(on_cancel)
    buttons.addWidget(run_button)
    buttons.addWidget(cancel_button)
    layout.addLayout(buttons)
    progress = QProgressBar(parent)
    progress.setRange(0, 100)
    progress.setValue(0)
    layout.addWidget(progress)
    status_label = QLabel(status, parent)
    status_label.setWordWrap(True)
    status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    layout.addWidget(status_label)
    return RunControls(run_button, cancel_button, progress, status_label)
