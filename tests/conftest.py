import importlib.util

# The QGIS plugin tests run under QGIS's own Python (`make test` runs them with
# /usr/bin/python3, where Debian's QGIS lives); the project's venv has no `qgis`, so
# it leaves that folder to them. Every other test needs torch and the venv.
collect_ignore = [] if importlib.util.find_spec("qgis") else ["qgis"]

if importlib.util.find_spec("torch"):
    import torch

    # Two CPU cores: keep torch from oversubscribing them in tests.
    torch.set_num_threads(2)
