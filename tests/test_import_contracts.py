"""Dependencies point one way, checked by parsing every module's imports (top level and inside
functions) with :mod:`ast`; nothing is imported.

* ``smgeo_model`` (``model/``): torch, timm, numpy, safetensors and the standard library, with
  two exceptions, each in one module: Pillow in ``model/data/cvogl.py`` (CVOGL ships JPEG files,
  and torch itself decodes no JPEG without torchvision) and tqdm in ``model/train/loop.py``
  (the training progress bar, imported inside the loop only when a bar is asked for).
* ``smgeo_geo`` never imports QGIS or Qt; its geo modules never import torch, even through
  the modules they import when they are imported.
* ``smgeo_synth`` (``synth/``, the data generator) builds on ``smgeo_geo``'s geo modules;
  ``smgeo_geo`` imports it only inside functions (the ``synth`` / ``realpairs`` commands and
  ``adapt``), so the geo library never loads the generator, and the generator loads torch only
  inside the function that writes the CVOGL lists.
* ``smgeo_retrieval`` (``retrieval/``, text-to-image retrieval) may use both; its text, corpus
  and index modules never import torch, and ``smgeo_geo`` imports it only inside functions (the
  CLI commands and the worker op that need it), so the locator never pays for it.
* ``qgis_plugin`` imports QGIS and the standard library only: never torch, smgeo_model,
  smgeo_geo or smgeo_retrieval (it reaches the model through the worker process).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"smgeo_model": ROOT / "model", "smgeo_geo": ROOT / "smgeo_geo", "smgeo_synth": ROOT / "synth",
            "smgeo_retrieval": ROOT / "retrieval"}
PLUGIN = ROOT / "qgis_plugin"  # holds the plugin package smgeo_locator
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def module_name(path: Path) -> str:
    for name, folder in PACKAGES.items():
        if folder in path.parents:
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    parts = path.relative_to(PLUGIN if PLUGIN in path.parents else ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, import_time_only: bool = False) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved). With
    ``import_time_only``, only those run when the module is imported: not inside functions
    or ``if TYPE_CHECKING:`` blocks."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if import_time_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if import_time_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # `from pkg import submodule`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def files(folder: Path) -> list[Path]:
    found = sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    assert found, folder
    return found


MODEL_ALLOWED = {"torch", "timm", "numpy", "safetensors", "smgeo_model"} | STDLIB
MODEL_EXCEPTIONS = {"model/data/cvogl.py": {"PIL"}, "model/train/loop.py": {"tqdm"}}


@pytest.mark.parametrize("path", files(ROOT / "model"), ids=lambda p: str(p.relative_to(ROOT)))
def test_model_package_imports_only_the_network_stack(path):
    rel = str(path.relative_to(ROOT))
    extra = top(imports(path)) - MODEL_ALLOWED - MODEL_EXCEPTIONS.get(rel, set())
    assert not extra, f"{rel} imports {sorted(extra)}"


def test_the_documented_model_exceptions_are_still_needed():
    """An exception that no longer applies is removed from the list above."""
    for rel, names in MODEL_EXCEPTIONS.items():
        assert names <= top(imports(ROOT / rel)), rel
    assert "tqdm" not in top(imports(ROOT / "model/train/loop.py", import_time_only=True))


@pytest.mark.parametrize("path", files(ROOT / "smgeo_geo"), ids=lambda p: str(p.relative_to(ROOT)))
def test_smgeo_geo_never_imports_qgis(path):
    bad = top(imports(path)) & {"qgis", "PyQt5", "PyQt6", "sip"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def _source(module: str) -> Path | None:
    """The file of an smgeo_model / smgeo_geo module (a package's ``__init__.py``), or None."""
    head, _, rest = module.partition(".")
    if head not in PACKAGES:
        return None
    base = PACKAGES[head].joinpath(*rest.split(".")) if rest else PACKAGES[head]
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_time_closure(module: str) -> set[str]:
    """Every module imported when ``module`` is imported (following smgeo_model / smgeo_geo
    modules, and the ``__init__`` of every package on the way)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        src = _source(name)
        if src is not None:
            todo += sorted(imports(src, import_time_only=True) - seen)
    return seen


# smgeo_geo/__init__.py: "Geo modules (coords, raster, windows, photo_meta, result, vector_io) never import torch"
GEO_MODULES = ["coords", "raster", "windows", "photo", "photo_meta", "result", "vector_io", "errors", "worker"]


@pytest.mark.parametrize("name", GEO_MODULES)
def test_geo_modules_do_not_import_torch(name):
    assert _source(f"smgeo_geo.{name}") is not None
    heavy = top(import_time_closure(f"smgeo_geo.{name}")) & {"torch", "timm"}
    assert not heavy, f"importing smgeo_geo.{name} imports {sorted(heavy)}"


@pytest.mark.parametrize("path", files(ROOT / "smgeo_geo"), ids=lambda p: str(p.relative_to(ROOT)))
def test_smgeo_geo_imports_the_generator_only_inside_functions(path):
    assert "smgeo_synth" not in top(imports(path, import_time_only=True)), str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", files(ROOT / "synth"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_generator_never_imports_qgis_and_loads_torch_only_inside_functions(path):
    rel = str(path.relative_to(ROOT))
    assert not top(imports(path)) & {"qgis", "PyQt5", "PyQt6", "sip"}, rel
    heavy = top(import_time_closure(module_name(path))) & {"torch", "timm"}
    assert not heavy, f"importing {rel} imports {sorted(heavy)}"


PLUGIN_FORBIDDEN = {"torch", "timm", "smgeo_model", "smgeo_geo", "smgeo_synth", "smgeo_retrieval", "faiss", "numpy",
                    "rasterio", "pyproj"}


@pytest.mark.parametrize("path", files(ROOT / "retrieval"), ids=lambda p: str(p.relative_to(ROOT)))
def test_retrieval_never_imports_qgis(path):
    bad = top(imports(path)) & {"qgis", "PyQt5", "PyQt6", "sip"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


RETRIEVAL_LIGHT = ["text", "corpus_io", "index", "corpus"]


@pytest.mark.parametrize("name", RETRIEVAL_LIGHT)
def test_retrieval_text_corpus_and_index_do_not_import_torch(name):
    assert _source(f"smgeo_retrieval.{name}") is not None
    heavy = top(import_time_closure(f"smgeo_retrieval.{name}")) & {"torch", "timm"}
    assert not heavy, f"importing smgeo_retrieval.{name} imports {sorted(heavy)}"


@pytest.mark.parametrize("path", files(ROOT / "smgeo_geo"), ids=lambda p: str(p.relative_to(ROOT)))
def test_smgeo_geo_imports_retrieval_only_inside_functions(path):
    assert "smgeo_retrieval" not in top(imports(path, import_time_only=True)), str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", files(PLUGIN), ids=lambda p: str(p.relative_to(ROOT)))
def test_qgis_plugin_imports_qgis_and_the_standard_library_only(path):
    names = top(imports(path))
    assert not names & PLUGIN_FORBIDDEN, f"{path.relative_to(ROOT)} imports {sorted(names & PLUGIN_FORBIDDEN)}"
    assert names <= STDLIB | {"qgis", "smgeo_locator"}, f"{path.relative_to(ROOT)}: {sorted(names - STDLIB)}"


def test_the_parser_sees_function_level_and_relative_imports():
    """The checker itself: an import hidden in a function, and a relative one, are found."""
    pkg = PACKAGES["smgeo_geo"] / "cli"
    assert "torch" in top(imports(pkg / "demo.py"))  # imported inside the command function only
    assert "torch" not in top(imports(pkg / "demo.py", import_time_only=True))
    assert "smgeo_geo.cli._common" in imports(pkg / "__init__.py")
    assert "smgeo_model.errors" in imports(ROOT / "model" / "checkpoint.py")
    assert "torch" in top(import_time_closure("smgeo_geo.predictor"))  # the closure follows imports
    assert "smgeo_model.checkpoint" in import_time_closure("smgeo_geo.predictor")
