"""The installable plugin: metadata QGIS's plugin manager needs, the zip `make plugin`
builds, that zip installed into a QGIS profile and loaded by ``qgis.utils`` (as QGIS's
plugin manager does), and the settings dialog."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import textwrap
import zipfile

from qgis.core import QgsSettings

from .conftest import DEMO, ROOT, VENV_PYTHON, wait_for_task
from .test_dock import click_photo, open_dock_with_demo

PLUGIN = ROOT / "qgis_plugin" / "smgeo_locator"


def test_metadata_has_what_the_plugin_manager_needs():
    meta = configparser.ConfigParser()
    meta.read(PLUGIN / "metadata.txt", encoding="utf-8")
    general = meta["general"]
    for field in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                  "tracker", "repository", "icon"):
        assert general.get(field, "").strip(), f"metadata.txt: {field} is empty"
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert (PLUGIN / general["icon"]).is_file()
    assert PLUGIN.name != "smgeo_geo"  # the plugin folder cannot shadow the library


def test_built_zip_installs_and_loads_in_qgis(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_plugin.py"), "--out", str(dist),
                    "--worker-python", str(VENV_PYTHON)], check=True, capture_output=True, text=True)
    (archive,) = dist.glob("smgeo_locator-*.zip")
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        assert zf.read("smgeo_locator/worker_python.txt").decode().strip() == str(VENV_PYTHON)
    sources = {f"smgeo_locator/{p.relative_to(PLUGIN).as_posix()}" for p in PLUGIN.rglob("*.py")
               if "__pycache__" not in p.parts}
    assert sources <= set(names)
    assert {"smgeo_locator/metadata.txt", "smgeo_locator/icon.png"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert all(n.startswith("smgeo_locator/") for n in names)

    # Install as QGIS's plugin manager does (unzip into the profile's plugin folder) and
    # load it with qgis.utils in a fresh QGIS, so the installed copy is the one imported.
    plugins = tmp_path / "profile" / "python" / "plugins"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(plugins)
    script = textwrap.dedent(f"""
        import json, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        os.environ.pop("SMGEO_PYTHON", None)
        from tests.qgis.conftest import DesktopInterface
        from qgis.testing import start_app
        app = start_app()
        import qgis.utils
        sys.path.insert(0, {str(plugins)!r})
        qgis.utils.plugin_paths = [{str(plugins)!r}]
        qgis.utils.updateAvailablePlugins()
        iface = DesktopInterface()
        qgis.utils.iface = iface
        report = {{"available": "smgeo_locator" in qgis.utils.available_plugins,
                   "loaded": qgis.utils.loadPlugin("smgeo_locator"),
                   "started": qgis.utils.startPlugin("smgeo_locator")}}
        import smgeo_locator
        from smgeo_locator.settings import find_worker_python
        from qgis.core import QgsApplication
        report["module"] = smgeo_locator.__file__
        report["worker_python"] = find_worker_python("")
        report["provider"] = QgsApplication.processingRegistry().providerById("smgeo") is not None
        report["toolbar"] = [a.text() for a in iface.toolbar.actions()]
        report["unloaded"] = qgis.utils.unloadPlugin("smgeo_locator")
        report["provider_after_unload"] = QgsApplication.processingRegistry().providerById("smgeo") is not None
        print("REPORT " + json.dumps(report), flush=True)
        os._exit(0)
    """)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["available"] and report["loaded"] and report["started"]
    assert report["module"].startswith(str(plugins))
    assert report["worker_python"] == str(VENV_PYTHON)  # found from worker_python.txt, no setting needed
    assert report["provider"] and report["toolbar"] == ["SMGeo Locator"]
    assert report["unloaded"] and not report["provider_after_unload"]


def test_settings_default_to_auto_when_unset_or_unknown(qgis_app):
    from smgeo_locator.settings import PREFIX, PluginSettings

    QgsSettings().remove(PREFIX.rstrip("/"))
    assert PluginSettings.load().method == "auto" and PluginSettings.load().device == "cpu"
    QgsSettings().setValue(PREFIX + "method", "telepathy")  # e.g. from a newer plugin version
    assert PluginSettings.load().method == "auto"
    QgsSettings().remove(PREFIX.rstrip("/"))


def test_settings_dialog_saves_checkpoint_device_and_method(plugin, iface, demo_layer, demo_meta, tmp_path):
    from smgeo_locator.service import stop_shared_client
    from smgeo_locator.settings import PREFIX, PluginSettings
    from smgeo_locator.settings_dialog import SettingsDialog

    dialog = SettingsDialog(PluginSettings.load(), iface.window)
    assert dialog.checkpoint_widget.filePath() == ""  # the bundled demo model by default
    assert dialog.method_combo.currentData() == "auto"
    assert [dialog.method_combo.itemData(i) for i in range(dialog.method_combo.count())] == \
        ["auto", "metadata", "registration", "smgeo"]
    missing = tmp_path / "my_model.safetensors"
    dialog.checkpoint_widget.setFilePath(str(missing))
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("smgeo"))
    dialog.apply()
    assert QgsSettings().value(PREFIX + "checkpoint") == str(missing)
    assert QgsSettings().value(PREFIX + "device") == "cpu"
    assert QgsSettings().value(PREFIX + "method") == "smgeo" == PluginSettings.load().method
    stop_shared_client()

    dock = open_dock_with_demo(plugin, demo_meta)
    assert dock.method_combo.currentData() == "smgeo"  # the panel starts with the saved default
    dock.method_combo.setCurrentIndex(dock.method_combo.findData("metadata"))
    dock.settings = PluginSettings.load()
    dock.apply_settings()  # what Plugins > SMGeo Locator > Settings > OK does
    assert dock.method_combo.currentData() == "smgeo"
    click_photo(dock, *demo_meta["click"])
    task = dock.task
    wait_for_task(dock, task)
    assert task.result is None and task.params["method"] == "smgeo"
    text = " ".join(iface.messages())
    assert "my_model" in text and "not found" in text and "SMGeo settings" in text

    # A GPU asked for where torch sees none: said plainly, no traceback.
    cuda = subprocess.run([str(VENV_PYTHON), "-c", "import torch; print(torch.cuda.is_available())"],
                          capture_output=True, text=True, check=True).stdout.strip() == "True"
    dock.settings.checkpoint = ""
    dock.settings.device = "cuda"
    stop_shared_client()
    iface.bar.clearWidgets()
    click_photo(dock, *demo_meta["click"])
    task = dock.task
    wait_for_task(dock, task)
    if cuda:
        assert task.result is not None
    else:
        assert task.result is None and "no CUDA GPU" in " ".join(iface.messages())
    stop_shared_client()
    assert str(DEMO) in dock.photo_path


def test_worker_python_given_relative_to_the_start_folder_still_runs(monkeypatch):
    # QGIS started from a checkout with SMGEO_PYTHON=.venv/bin/python: the worker runs in
    # another folder, so the interpreter is resolved to an absolute path first.
    from smgeo_locator.settings import find_worker_python
    from smgeo_locator.worker_client import WorkerClient

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SMGEO_PYTHON", os.path.relpath(VENV_PYTHON))
    python = find_worker_python("")
    assert os.path.isabs(python) and os.path.samefile(python, VENV_PYTHON)
    client = WorkerClient(python)
    try:
        assert client.request("hello", {})["protocol"] >= 1
    finally:
        client.stop()
