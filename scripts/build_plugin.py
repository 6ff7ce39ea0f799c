"""Build the installable QGIS plugin zip: dist/smgeo_locator-<version>.zip.

The zip holds the folder ``smgeo_locator/`` (install it with Plugins > Manage and Install
Plugins > Install from ZIP). If this checkout has its environment (``make setup``), the
zip records that interpreter in ``smgeo_locator/worker_python.txt`` so the plugin finds
its worker without any setting; otherwise set "Worker Python" in the plugin's settings.
"""

from __future__ import annotations

import argparse
import configparser
import importlib.util
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "qgis_plugin" / "smgeo_locator"
SKIP_DIRS = {"__pycache__", ".pytest_cache"}


def atomic_path(target: Path):
    """The project's one atomic writer (``model/fileio.py``, standard library only), loaded by
    path: this script also runs under a Python without the project installed (QGIS's)."""
    spec = importlib.util.spec_from_file_location("smgeo_fileio", ROOT / "model" / "fileio.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.atomic_path(target)


def build(out_dir: Path, worker_python: str | None) -> Path:
    meta = configparser.ConfigParser()
    meta.read(PLUGIN / "metadata.txt", encoding="utf-8")
    version = meta["general"]["version"]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"smgeo_locator-{version}.zip"
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PLUGIN.rglob("*")):
            rel = path.relative_to(PLUGIN.parent)
            if path.is_dir() or SKIP_DIRS & set(rel.parts) or path.suffix == ".pyc" or path.name == "worker_python.txt":
                continue
            zf.write(path, rel.as_posix())
        if worker_python:
            zf.writestr("smgeo_locator/worker_python.txt", worker_python + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument("--worker-python", default=None,
                        help="interpreter to record (default: this checkout's .venv/bin/python if it exists)")
    args = parser.parse_args(argv)
    python = args.worker_python
    if python is None:
        venv = ROOT / ".venv" / "bin" / "python"
        python = str(venv.absolute()) if venv.is_file() else ""
    target = build(args.out, python or None)
    print(f"wrote {target}" + (f" (worker python: {python})" if python else " (no worker python recorded)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
