"""``python -m smgeo_geo.cli`` (used by ``torchrun -m smgeo_geo.cli train ...``)."""

from smgeo_geo.cli import main

main()
