"""The stages' answers (:class:`Stage`) and how ``auto`` makes one result of them.

The point (:func:`fuse_point`); the first rule that applies answers:

1. the registration held and the metadata gave no point: the registration;
2. the registration held only with another camera height or heading than the metadata's (a DEM
   in another vertical datum, a compass far off): the registration, as the metadata's point
   rests on that height or heading;
3. a pose (DEM) that the metadata does not explain (the error its matches imply lies beyond the
   budget's 99.9 % ellipsoid, :func:`~smgeo_geo.pose.fit_metadata_error`, or the refined camera
   lies beyond the budget's 99.9 % above or below the metadata's: dragged by a coarse DEM's
   heights) mapped the click from matches away from it (the patch around the click did not
   register) and lands farther from the metadata's point than its own radius: the metadata,
   its radius reaching the registration's circle (their distance plus its radius);
4. the registration is supported: its 90 % circle and the metadata's overlap, or (pose mode)
   the metadata error the whole photo's matches imply lies within the budget (the metadata may
   be off by more than its radius at one click), or the camera the matches imply registers the
   photo again and is implied again (:func:`~smgeo_geo.assumed_cameras.reproduces_itself`: where
   no such fit speaks for it), or it has :data:`STRONG_INLIERS` matches. Then

   a. the circles overlap and the metadata's radius is the smaller: the metadata (a
      registration that mapped the click from distant features only can be the looser); when
      the registration's point lies outside the metadata's circle, the metadata is off there by
      more than its radius or the registration's far map is: one that matched around the click
      answers (b, c), else the metadata with a radius that reaches the registration's circle;
   b. local maps (no DEM, which can lock onto a repeated pattern such as lane dashes), or the
      camera test alone, farther from the metadata's point than its own radius: the
      registration, its radius that distance (one of the two is wrong by about that much);
   c. else the registration;
5. a registration that held but is not supported: the metadata, its radius reaching the
   registration's circle (the metadata may be off by that much, or the match is false);
6. no registration: the metadata; without it, SMGeo's best box centre, its radius the distance
   to the farthest corner of the window SMGeo searched (the model's scores are not calibrated on
   real imagery).

The box (:func:`fused_detection`): the best SMGeo candidate that holds the point (ranked by its
score and agreement with the point within its uncertainty), else the click region (a square of
``REGION`` times the photo's shorter side around the click) cast onto the ground, else a square
of the radius. Frames: stage points are raster-CRS ``(x, y)``; boxes raster pixels
``(x1, y1, x2, y2)``; radii metres on the ground.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from rasterio.windows import Window

from smgeo_geo.coords import crs_to_lonlat, geodesic_distance, pixel_to_crs
from smgeo_geo.errors import SMGeoError
from smgeo_geo.pose import CHI2_999
from smgeo_geo.raster import ReferenceRaster
from smgeo_geo.result import Detection

STRONG_INLIERS = 60  # a registration with this many inliers (global + around the click) outvotes the metadata


def confidence(uncertainty_m: float) -> float:
    """A 0..1 confidence that falls with the 90 % radius: ``1 / (1 + u / 5 m)``."""
    return 0.0 if not math.isfinite(uncertainty_m) else 1.0 / (1.0 + uncertainty_m / 5.0)


@dataclass
class Stage:
    """One stage's answer: ``ok``; ``reason`` when not; ``point`` raster-CRS (x, y);
    ``uncertainty_m`` 90 % radius; ``details`` scalars for the result's properties;
    ``searched`` the raster window SMGeo searched (its stage only)."""

    name: str
    ok: bool
    reason: str = ""
    point: tuple[float, float] | None = None
    uncertainty_m: float = math.inf
    region: np.ndarray | None = None  # raster-pixel quadrilateral of the click region
    details: dict = field(default_factory=dict)
    searched: Window | None = None  # smgeo: the raster window it searched


def quad_box(quad: np.ndarray) -> tuple[float, float, float, float]:
    return float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()), float(quad[:, 1].max())


def ground_distance_m(raster: ReferenceRaster, a: tuple[float, float], b: tuple[float, float]) -> float:
    """Metres on the ground (geodesic) between two raster-CRS points ``(x, y)``, in any CRS
    (a geographic raster's points are degrees)."""
    lon, lat = crs_to_lonlat(raster.crs, [a[0], b[0]], [a[1], b[1]])
    return float(geodesic_distance(lon[0], lat[0], lon[1], lat[1]))


def circles_overlap(raster: ReferenceRaster, meta: Stage, reg: Stage) -> bool:
    """Whether two stages' 90 % circles overlap (their points no farther apart than the radii)."""
    return ground_distance_m(raster, meta.point, reg.point) <= meta.uncertainty_m + reg.uncertainty_m


def fuse_point(stages: dict[str, Stage], raster: ReferenceRaster) -> Stage | None:
    """The stage whose point answers, by the rules of the module docstring (numbered below), or
    None; ``raster``: the reference the stages' points (raster CRS) lie on."""
    meta, reg = stages.get("metadata"), stages.get("registration")
    if reg is None or not reg.ok:
        return meta if meta is not None and meta.ok else None  # rule 6 (SMGeo: the caller)
    if meta is None or not meta.ok:
        return reg  # rule 1
    if reg.details.get("height_hypothesis_m") or reg.details.get("heading_hypothesis"):
        return reg  # rule 2
    dist = ground_distance_m(raster, meta.point, reg.point)
    support = reg.details.get("inliers", 0) + reg.details.get("patch_inliers", 0)  # matched features
    overlap = circles_overlap(raster, meta, reg)
    explained = reg.details.get("metadata_explained", False)
    confirmed = reg.details.get("confirmed_by_its_camera", False)
    pose_in_budget = explained and reg.details.get("camera_height_sigma", 0.0) ** 2 <= CHI2_999[1]
    if reg.details.get("mode") == "pose" and not reg.details.get("patch_inliers") and not pose_in_budget \
            and dist > reg.uncertainty_m:  # rule 3: one of the two is wrong by about their distance
        reg.details["disagrees_with_metadata_m"] = round(dist, 2)
        return replace(meta, uncertainty_m=max(meta.uncertainty_m, dist + reg.uncertainty_m))
    if overlap or explained or confirmed or support >= STRONG_INLIERS:  # rule 4
        if overlap and meta.uncertainty_m < reg.uncertainty_m:
            if dist <= meta.uncertainty_m:
                return meta  # 4a
            if not reg.details.get("patch_inliers"):
                reg.details["disagrees_with_metadata_m"] = round(dist, 2)
                return replace(meta, uncertainty_m=dist + reg.uncertainty_m)  # 4a, neither matched here
        camera_test_alone = not (overlap or explained or support >= STRONG_INLIERS)
        if (reg.details.get("mode") != "pose" or camera_test_alone) and dist > reg.uncertainty_m:
            return replace(reg, uncertainty_m=dist)  # 4b
        return reg  # 4c
    reg.details["disagrees_with_metadata_m"] = round(dist, 2)  # rule 5
    return replace(meta, uncertainty_m=max(meta.uncertainty_m, dist + reg.uncertainty_m))


def _smgeo_radius_m(raster: ReferenceRaster, centre_px, box, stage: Stage | None) -> float:
    """Radius (m) that SMGeo's answer alone is given: its scores are not calibrated on real
    imagery, so the object is only known to lie in the window searched; the distance from the
    answer to that window's farthest corner (``stage.searched``), else to the box's farthest
    corner (half the box)."""
    w = stage.searched if stage is not None else None
    corners = np.array([box[:2], box[2:]], float) if w is None else \
        np.array([[w.col_off, w.row_off], [w.col_off + w.width, w.row_off + w.height]], float)
    xs, ys = np.meshgrid(corners[:, 0], corners[:, 1])
    lon, lat = crs_to_lonlat(raster.crs, *pixel_to_crs(raster.transform, xs.ravel(), ys.ravel()))
    c_lon, c_lat = crs_to_lonlat(raster.crs, *pixel_to_crs(raster.transform, [centre_px[0]], [centre_px[1]]))
    return float(np.max(geodesic_distance(np.full(len(lon), c_lon[0]), np.full(len(lat), c_lat[0]), lon, lat)))


def _agreement(box, point_px, sigma_px: float) -> float:
    """Gaussian agreement of a raster-pixel box with a raster-pixel point (1 inside the box)."""
    dx = max(box[0] - point_px[0], 0.0, point_px[0] - box[2])
    dy = max(box[1] - point_px[1], 0.0, point_px[1] - box[3])
    return math.exp(-0.5 * (dx * dx + dy * dy) / max(sigma_px, 1e-6) ** 2)


def _holds(box, point_px) -> bool:
    """Whether the raster-pixel box ``(x1, y1, x2, y2)`` holds the raster-pixel point ``(x, y)``."""
    return box[0] <= point_px[0] <= box[2] and box[1] <= point_px[1] <= box[3]


def fused_detection(raster, photo, click, stages, estimate, smgeo_det, top_k, model_id) -> Detection:
    """The fused :class:`Detection` with every stage's properties (see the module docstring)."""
    extra: dict = {}
    for name, st in stages.items():
        extra[f"{name}_status"] = "ok" if st.ok else st.reason
        if st.ok and st.point is not None:
            lon, lat = crs_to_lonlat(raster.crs, [st.point[0]], [st.point[1]])
            extra.update({f"{name}_lon": float(lon[0]), f"{name}_lat": float(lat[0]),
                          f"{name}_uncertainty_m": round(st.uncertainty_m, 3)})
        for k, v in st.details.items():
            extra[f"{name}_{k}"] = v
    held = [n for n in ("metadata", "registration", "smgeo") if n in stages and stages[n].ok]
    candidates = [] if smgeo_det is None else [smgeo_det, *smgeo_det.candidates]
    box, score, box_source = None, 0.0, ""
    if estimate is not None:
        px = ~raster.transform @ estimate.point
        res = raster.pixel_size_m_at(*px)
        sigma_px = max(estimate.uncertainty_m / math.sqrt(4.605), res) / res
        ranked = sorted(candidates, key=lambda d: -d.score * _agreement(d.pixel_box, px, sigma_px))
        holding = [d for d in ranked if _holds(d.pixel_box, px)]
        if holding:  # the drawn object must hold the located point: a box beside it is a neighbour's
            box, score, box_source = holding[0].pixel_box, holding[0].score, "smgeo"
            candidates = ranked
        elif estimate.region is not None:
            box, score, box_source = quad_box(estimate.region), confidence(estimate.uncertainty_m), "click region"
        else:
            half = max(estimate.uncertainty_m, 2.0) / res
            box, score, box_source = (px[0] - half, px[1] - half, px[0] + half, px[1] + half), 0.0, "uncertainty"
        point, unc, answer = estimate.point, estimate.uncertainty_m, estimate.name
    elif smgeo_det is not None:
        box, score, box_source = smgeo_det.pixel_box, smgeo_det.score, "smgeo"
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        xs, ys = pixel_to_crs(raster.transform, [cx], [cy])
        point, answer = (float(xs[0]), float(ys[0])), "smgeo"
        unc = _smgeo_radius_m(raster, (cx, cy), box, stages.get("smgeo"))
    else:
        reasons = "; ".join(f"{n}: {s.reason}" for n, s in stages.items() if not s.ok)
        raise SMGeoError(f"{photo}: no stage could locate the click ({reasons})")
    lon, lat = crs_to_lonlat(raster.crs, [point[0]], [point[1]])
    extra.update(method="+".join(held) or "none", answer=answer, uncertainty_m=round(float(unc), 3),
                 confidence=round(confidence(unc), 4), located_lon=float(lon[0]), located_lat=float(lat[0]),
                 box_source=box_source)
    common = dict(query_image=str(photo), click=click, model_id=model_id, reference=str(raster.path))
    best = Detection.from_pixel_box(box, raster, score=score, rank=0, extra=extra, **common)
    others = [c for c in candidates if c.pixel_box != box][: max(0, top_k - 1)]
    best.candidates = [Detection.from_pixel_box(c.pixel_box, raster, score=c.score, rank=i + 1, **common)
                       for i, c in enumerate(others)]
    return best


__all__ = ["STRONG_INLIERS", "Stage", "confidence", "circles_overlap", "fuse_point", "fused_detection", "ground_distance_m",
           "quad_box"]
