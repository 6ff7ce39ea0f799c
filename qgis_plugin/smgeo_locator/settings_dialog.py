"""Settings dialog: worker Python, checkpoint, device, default method."""

from __future__ import annotations

from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel

from .settings import METHODS, PluginSettings, find_worker_python


class SettingsDialog(QDialog):
    def __init__(self, settings: PluginSettings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("SMGeo Locator settings")
        self.settings = settings
        form = QFormLayout(self)
        self.python_widget = QgsFileWidget(self)
        self.python_widget.setFilePath(settings.python)
        self.python_widget.setToolTip("python of the environment where smgeo-geo is installed, "
                                      "e.g. <checkout>/.venv/bin/python; empty = found automatically")
        form.addRow("Worker Python", self.python_widget)
        found = find_worker_python(settings.python)
        form.addRow("", QLabel(f"in use: {found or 'none found'}", self))
        self.checkpoint_widget = QgsFileWidget(self)
        self.checkpoint_widget.setFilter("SMGeo checkpoint (*.safetensors)")
        self.checkpoint_widget.setFilePath(settings.checkpoint)
        self.checkpoint_widget.setToolTip("empty = the bundled demo model")
        form.addRow("Checkpoint", self.checkpoint_widget)
        self.device_combo = QComboBox(self)
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.addItem("GPU (CUDA)", "cuda")
        self.device_combo.setCurrentIndex(1 if settings.device.startswith("cuda") else 0)
        form.addRow("Device", self.device_combo)
        self.method_combo = QComboBox(self)
        for key, label in METHODS:
            self.method_combo.addItem(label, key)
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(settings.method)))
        self.method_combo.setToolTip("the method the SMGeo panel starts with (it can be changed there per search)")
        form.addRow("Default method", self.method_combo)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, parent=self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def apply(self) -> PluginSettings:
        """Copy the fields into the settings and save them."""
        self.settings.python = self.python_widget.filePath().strip()
        self.settings.checkpoint = self.checkpoint_widget.filePath().strip()
        self.settings.device = self.device_combo.currentData()
        self.settings.method = self.method_combo.currentData()
        self.settings.save()
        return self.settings
