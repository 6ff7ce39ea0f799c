"""Plugin settings (QgsSettings under ``smgeo_locator/``) and finding the worker's Python.

``python``: interpreter of the environment where smgeo-geo is installed (the worker runs
there). Found automatically, first match wins:

1. the saved setting (Settings dialog);
2. the ``SMGEO_PYTHON`` environment variable;
3. ``worker_python.txt`` next to this file (written by ``make plugin`` with the building
   checkout's ``.venv/bin/python``);
4. ``.venv/bin/python`` of the repository, when the plugin folder sits in (or is a link
   into) a checkout;
5. the interpreter of an ``smgeo`` command on PATH.

``checkpoint``: SMGeo checkpoint (.safetensors + .json); empty = the bundled demo model.
``device``: ``cpu`` or ``cuda``.
``method``: the panel's default locating method (:data:`METHODS`; ``auto`` when unset or unknown).
``retrieval_index``: the "Find by description" index folder (``smgeo index build``) last used.
``retrieval_top_k``: how many hits "Find by description" asks for (1-100, default 10).
``retrieval_place_fusion``: whether "Find by description" weighs each hit's neighbouring views
(``smgeo retrieve``'s place fusion; default on).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from qgis.core import QgsSettings

PREFIX = "smgeo_locator/"
PLUGIN_DIR = Path(__file__).resolve().parent
# the worker's ``method`` values (smgeo_geo.locator.METHODS) and how the plugin names them
METHODS = [("auto", "Auto (metadata + registration + SMGeo)"), ("metadata", "Photo metadata only"),
           ("registration", "Registration only"), ("smgeo", "SMGeo only")]
METHOD_KEYS = [key for key, _ in METHODS]


@dataclass
class PluginSettings:
    python: str = ""
    checkpoint: str = ""
    device: str = "cpu"
    method: str = "auto"
    recent_photos: tuple[str, ...] = ()
    retrieval_index: str = ""
    retrieval_top_k: int = 10
    retrieval_place_fusion: bool = True

    @classmethod
    def load(cls) -> "PluginSettings":
        s = QgsSettings()
        recent = s.value(PREFIX + "recent_photos", [], type=list) or []
        method = str(s.value(PREFIX + "method", "auto", type=str) or "auto")
        try:
            top_k = int(s.value(PREFIX + "retrieval_top_k", 10))
        except (TypeError, ValueError):
            top_k = 10
        return cls(python=str(s.value(PREFIX + "python", "", type=str) or ""),
                   checkpoint=str(s.value(PREFIX + "checkpoint", "", type=str) or ""),
                   device=str(s.value(PREFIX + "device", "cpu", type=str) or "cpu"),
                   method=method if method in METHOD_KEYS else "auto",
                   recent_photos=tuple(str(p) for p in recent),
                   retrieval_index=str(s.value(PREFIX + "retrieval_index", "", type=str) or ""),
                   retrieval_top_k=min(max(top_k, 1), 100),
                   retrieval_place_fusion=bool(s.value(PREFIX + "retrieval_place_fusion", True, type=bool)))

    def save(self) -> None:
        s = QgsSettings()
        s.setValue(PREFIX + "python", self.python)
        s.setValue(PREFIX + "checkpoint", self.checkpoint)
        s.setValue(PREFIX + "device", self.device)
        s.setValue(PREFIX + "method", self.method if self.method in METHOD_KEYS else "auto")
        s.setValue(PREFIX + "recent_photos", list(self.recent_photos))
        s.setValue(PREFIX + "retrieval_index", self.retrieval_index)
        s.setValue(PREFIX + "retrieval_top_k", int(self.retrieval_top_k))
        s.setValue(PREFIX + "retrieval_place_fusion", bool(self.retrieval_place_fusion))

    def add_recent_photo(self, path: str, keep: int = 10) -> None:
        self.recent_photos = tuple([path] + [p for p in self.recent_photos if p != path])[:keep]

    def worker_python(self) -> str:
        """The interpreter to run the worker with ('' if none was found)."""
        return find_worker_python(self.python)


def _executable(path: str | os.PathLike | None) -> bool:
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def _shebang_python(script: str) -> str:
    try:
        with open(script, "rb") as fh:
            first = fh.readline().decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return first[2:].strip().split()[0] if first.startswith("#!") and len(first) > 2 else ""


def candidate_pythons(saved: str = "") -> list[str]:
    """Interpreters to try, in order (see the module docstring)."""
    out = [saved, os.environ.get("SMGEO_PYTHON", "")]
    marker = PLUGIN_DIR / "worker_python.txt"
    if marker.is_file():
        out.append(marker.read_text(encoding="utf-8").strip())
    for parent in list(PLUGIN_DIR.parents)[:3]:
        out.append(str(parent / ".venv" / "bin" / "python"))
    smgeo = shutil.which("smgeo")
    if smgeo:
        out.append(_shebang_python(smgeo))
    return [p for p in out if p]


def find_worker_python(saved: str = "") -> str:
    """The first usable interpreter, as an absolute path (the worker runs in another folder)."""
    for path in candidate_pythons(saved):
        if _executable(path):
            return os.path.abspath(path)
    return ""


SETUP_HELP = (
    "SMGeo needs its worker environment (QGIS's own Python does not need torch). In a checkout of "
    "SMGeo-Geo run 'make setup', then set Plugins > SMGeo Locator > Settings > Worker Python to "
    "<checkout>/.venv/bin/python (or set the SMGEO_PYTHON environment variable).")
