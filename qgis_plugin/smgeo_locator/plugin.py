"""The plugin object QGIS creates: toolbar/menu actions, the dock, the Processing provider."""

from __future__ import annotations

import os

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .dock import LocatorDock
from .processing_provider import SMGeoProvider
from .service import stop_shared_client
from .settings_dialog import SettingsDialog

MENU = "&SMGeo Locator"


class SMGeoLocatorPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface
        self.dock: LocatorDock | None = None
        self.provider: SMGeoProvider | None = None
        self.actions: list[QAction] = []

    def initProcessing(self) -> None:  # noqa: N802 (QGIS calls it)
        if self.provider is None:
            self.provider = SMGeoProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        self.initProcessing()
        icon = QIcon(os.path.join(os.path.dirname(__file__), "icon.png"))
        self.dock_action = QAction(icon, "SMGeo Locator", self.iface.mainWindow())
        self.dock_action.setCheckable(True)
        self.dock_action.setToolTip("Locate the object clicked in a drone photo on the map")
        self.dock_action.toggled.connect(self.show_dock)
        self.settings_action = QAction("Settings…", self.iface.mainWindow())
        self.settings_action.triggered.connect(self.open_settings)
        self.iface.addToolBarIcon(self.dock_action)
        for action in (self.dock_action, self.settings_action):
            self.iface.addPluginToMenu(MENU, action)
        self.actions = [self.dock_action, self.settings_action]

    def show_dock(self, visible: bool = True) -> LocatorDock:
        if self.dock is None:
            self.dock = LocatorDock(self.iface, self.iface.mainWindow())
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
            self.dock.visibilityChanged.connect(self.dock_action.setChecked)
        self.dock.setVisible(visible)
        return self.dock

    def open_settings(self) -> None:
        settings = self.dock.settings if self.dock is not None else None
        from .settings import PluginSettings

        dialog = SettingsDialog(settings or PluginSettings.load(), self.iface.mainWindow())
        if dialog.exec_():
            dialog.apply()
            stop_shared_client()  # the next request starts a worker with the new settings
            if self.dock is not None:
                self.dock.apply_settings()

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginMenu(MENU, action)
            self.iface.removeToolBarIcon(action)
        if self.dock is not None:
            self.dock.cancel()
            self.dock.retrieval_panel.cancel()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        stop_shared_client()
