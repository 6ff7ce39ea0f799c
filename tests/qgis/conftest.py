"""Fixtures for the QGIS plugin tests, run in a real (headless) QGIS.

Run with QGIS's Python: ``QT_QPA_PLATFORM=offscreen /usr/bin/python3 -m pytest tests/qgis``
(``make test`` does). The plugin's worker runs in the project's venv (``SMGEO_PYTHON``,
default ``.venv/bin/python``), exactly as for a user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# QGIS saves band statistics in .aux.xml files beside rasters it draws: not beside the
# bundled demo raster in the source tree.
os.environ.setdefault("GDAL_PAM_ENABLED", "NO")

from qgis.core import QgsProject, QgsRasterLayer  # noqa: E402  (after the platform is set)
from qgis.gui import QgsLayerTreeMapCanvasBridge, QgsMapCanvas, QgsMessageBar  # noqa: E402
from qgis.PyQt.QtCore import QCoreApplication, QSize  # noqa: E402
from qgis.PyQt.QtWidgets import QMainWindow, QToolBar, QVBoxLayout, QWidget  # noqa: E402
from qgis.testing import start_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "smgeo_geo" / "data" / "demo"
# real DJI photos, an orthophoto and a DSM beside the checkout (as on CI): see its README.md
REAL_ODM = Path(__file__).resolve().parent.parents[1].parent / "shared" / "data" / "real-odm"
VENV_PYTHON = Path(os.environ.get("SMGEO_PYTHON") or ROOT / ".venv" / "bin" / "python")
sys.path.insert(0, str(ROOT / "qgis_plugin"))
sys.path.append("/usr/share/qgis/python/plugins")  # QGIS's Processing framework


class DesktopInterface:
    """The part of ``QgisInterface`` the plugin uses, backed by real QGIS widgets: a main
    window, a map canvas that shows the project's layers, a message bar, a toolbar."""

    def __init__(self) -> None:
        self.window = QMainWindow()
        central = QWidget(self.window)
        layout = QVBoxLayout(central)
        self.bar = QgsMessageBar(central)
        self.canvas = QgsMapCanvas(central)
        self.canvas.resize(QSize(520, 520))
        layout.addWidget(self.bar)
        layout.addWidget(self.canvas)
        self.window.setCentralWidget(central)
        self.toolbar = QToolBar("Plugins", self.window)
        self.window.addToolBar(self.toolbar)
        self.bridge = QgsLayerTreeMapCanvasBridge(QgsProject.instance().layerTreeRoot(), self.canvas)
        self.menus: dict[str, list] = {}
        self.active_layer = None
        self.window.resize(1100, 900)

    def mainWindow(self):  # noqa: N802 (QgisInterface names)
        return self.window

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def messageBar(self):  # noqa: N802
        return self.bar

    def activeLayer(self):  # noqa: N802
        return self.active_layer

    def addToolBarIcon(self, action):  # noqa: N802
        self.toolbar.addAction(action)

    def removeToolBarIcon(self, action):  # noqa: N802
        self.toolbar.removeAction(action)

    def addPluginToMenu(self, menu, action):  # noqa: N802
        self.menus.setdefault(menu, []).append(action)

    def removePluginMenu(self, menu, action):  # noqa: N802
        self.menus.get(menu, []).remove(action)

    def addDockWidget(self, area, dock):  # noqa: N802
        self.window.addDockWidget(area, dock)

    def removeDockWidget(self, dock):  # noqa: N802
        self.window.removeDockWidget(dock)

    def messages(self) -> list[str]:
        """Texts of the message bar's current items."""
        return [item.text() for item in self.bar.items()]


@pytest.fixture(scope="session")
def qgis_app():
    app = start_app()
    from processing.core.Processing import Processing

    Processing.initialize()
    if not VENV_PYTHON.is_file():
        pytest.fail(f"the worker environment {VENV_PYTHON} is missing: run 'make setup' (or set SMGEO_PYTHON)")
    os.environ["SMGEO_PYTHON"] = str(VENV_PYTHON)
    yield app


@pytest.fixture
def project(qgis_app):
    project = QgsProject.instance()
    project.clear()
    yield project
    project.clear()


@pytest.fixture
def iface(project):
    iface = DesktopInterface()
    iface.window.show()
    yield iface
    iface.window.close()


@pytest.fixture
def plugin(iface, monkeypatch):
    """The plugin, loaded with default settings. Its teardown unloads it as QGIS does but keeps
    the worker running for the next test (starting one and loading the model costs seconds;
    ``test_unload_stops_the_worker`` checks the real unload). A test that needs a fresh worker
    calls ``stop_shared_client()``."""
    import smgeo_locator
    import smgeo_locator.plugin as plugin_module
    from smgeo_locator.settings import PREFIX
    from qgis.core import QgsSettings

    QgsSettings().remove(PREFIX.rstrip("/"))  # start from default settings
    plugin = smgeo_locator.classFactory(iface)
    plugin.initGui()
    yield plugin
    monkeypatch.setattr(plugin_module, "stop_shared_client", lambda: None)
    plugin.unload()


@pytest.fixture
def demo_meta():
    import json

    return json.loads((DEMO / "demo.json").read_text())


@pytest.fixture
def demo_layer(project, iface, demo_meta):
    layer = QgsRasterLayer(str(DEMO / demo_meta["reference"]), "demo satellite", "gdal")
    assert layer.isValid()
    project.addMapLayer(layer)
    iface.canvas.setDestinationCrs(layer.crs())
    iface.canvas.setExtent(layer.extent())
    iface.active_layer = layer
    return layer


@pytest.fixture
def real_odm(project, iface):
    """The real orthophoto (EPSG:32651) and DSM as layers, the south-looking DJI photo and a
    click on the road that the orthophoto covers; skipped where the data is not beside the
    checkout (an error on CI, where it always is)."""
    if not REAL_ODM.is_dir():
        if os.environ.get("CI"):
            raise RuntimeError(f"real test data missing on CI: {REAL_ODM}")
        pytest.skip(f"the shared real-data folder {REAL_ODM} is not beside this checkout")
    ortho = QgsRasterLayer(str(REAL_ODM / "reference_0018.tif"), "orthophoto 0018", "gdal")
    dsm = QgsRasterLayer(str(REAL_ODM / "dsm.tif"), "dsm", "gdal")
    assert ortho.isValid() and dsm.isValid()
    project.addMapLayers([ortho, dsm])
    iface.canvas.setDestinationCrs(ortho.crs())
    iface.canvas.setExtent(ortho.extent())
    iface.active_layer = ortho
    return SimpleNamespace(ortho=ortho, dsm=dsm, photo=REAL_ODM / "photos" / "100_0005_0136.jpg",
                           click=(330.0, 821.7))


# the tiny preset, one in-batch epoch on CPU (seconds): a real checkpoint for the index
RETRIEVAL_TRAIN_ARGS = ("--preset", "tiny", "--stage1-epochs", 1, "--stage2-epochs", 0, "--batch-size", 16,
                        "--device", "cpu", "--quiet")


def smgeo_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """Run ``smgeo ARGS`` (the real CLI, in the worker environment); a failure fails the test
    with the command's last output lines."""
    command = [str(VENV_PYTHON), "-m", "smgeo_geo.cli", *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        pytest.fail(f"smgeo {' '.join(map(str, args))} exited {done.returncode}:\n{tail}")
    return done


@pytest.fixture(scope="session")
def retrieval_index(qgis_app, tmp_path_factory):
    """A real tiny "Find by description" index made by the real CLI: a 6-place corpus
    (``smgeo synth-retrieval``), a tiny retrieval model trained for one epoch (``smgeo
    train-retrieval``), every item of the corpus indexed (``smgeo index build``)."""
    root = tmp_path_factory.mktemp("retrieval")
    corpus, run, index = root / "corpus", root / "run", root / "index"
    smgeo_cli("synth-retrieval", "--out", corpus, "--places", 6, "--image-size", 64, "--workers", 1, "--quiet",
              cwd=root)
    smgeo_cli("train-retrieval", *RETRIEVAL_TRAIN_ARGS, "--corpus", corpus, "--out", run, cwd=root)
    checkpoint = run / "best.safetensors"
    assert checkpoint.is_file() and checkpoint.with_suffix(".json").is_file(), \
        f"smgeo train-retrieval wrote no best checkpoint in {run}"
    smgeo_cli("index", "build", "--corpus", corpus, "--checkpoint", checkpoint, "--out", index, cwd=root)
    return SimpleNamespace(root=root, corpus=corpus, checkpoint=checkpoint, index=index)



def cli_retrieve(index, text: str, top_k: int, out, *options: str) -> list[dict]:
    """The hits of ``smgeo retrieve`` (the oracle of the panel and the algorithm): GeoJSON
    features, rank 1 first; ``options``: more CLI options (e.g. ``--no-place-fusion``)."""
    smgeo_cli("retrieve", "--text", text, "--index", index, "--top-k", top_k, "--out", out, *options)
    return json.loads(Path(out).read_text())["features"]


SCORE_TOL = 1e-5  # two processes may round the inner products differently in the last bits


def assert_same_ranking(item_ids: list[str], scores: list[float], oracle: list[dict]) -> None:
    """``item_ids`` / ``scores`` (rank 1 first) are the ranking of ``oracle`` (features of
    :func:`cli_retrieve`, asked for more hits than compared): the same scores rank by rank,
    and the same items, where items whose scores tie within SCORE_TOL may trade places."""
    assert len(set(item_ids)) == len(item_ids) and len(oracle) >= len(item_ids)
    for rank, (item_id, score) in enumerate(zip(item_ids, scores), 1):
        props = oracle[rank - 1]["properties"]
        assert props["rank"] == rank and score == pytest.approx(props["score"], abs=SCORE_TOL)
        tied = {f["properties"]["item_id"] for f in oracle if abs(f["properties"]["score"] - score) <= SCORE_TOL}
        assert item_id == props["item_id"] or item_id in tied, f"rank {rank}: {item_id}, expected {props['item_id']}"


_exit_status: int | None = None


def pytest_sessionfinish(session, exitstatus) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config) -> None:
    """Leave without running Python's interpreter teardown: destroying QGIS's C++ objects
    in Python's garbage-collection order can crash after all results are reported (QGIS
    3.22 + PyQt5), which would turn a green run red. Workers are stopped first."""
    if _exit_status is None:
        return
    try:
        from smgeo_locator.service import stop_shared_client

        stop_shared_client()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)


def wait_until(predicate, timeout: float = 180.0, what: str = "condition") -> None:
    """Process Qt events until ``predicate()`` is true (QgsTask.finished runs on the main thread)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        QCoreApplication.processEvents()
        time.sleep(0.01)


def wait_for_task(dock, task, timeout: float = 180.0) -> None:
    """Wait until ``task`` is done and the dock has handled it (``task.ended``: QGIS may
    delete a finished task's C++ object, after which ``task.status()`` raises)."""
    wait_until(lambda: task.ended and dock.task is not task,
               timeout, f"task {task.description()}")
    QCoreApplication.processEvents()

