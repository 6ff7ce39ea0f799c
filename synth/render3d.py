"""3-D objects (buildings, stands, bridges, vehicles, trees) drawn with the painter's algorithm.

Solids are extruded prisms (:class:`~.scene.Solid`): their faces (walls, gable ends, roof
planes) are projected by a camera from :mod:`.camera` and filled far to near with
back-face culling, shaded by the capture's sun (Lambert + sky ambient). Because the drone
camera is a real perspective camera, roofs are displaced from footprints by parallax and
the facades facing the camera show. Trees are crowns of sun-lit clumps on a trunk.

Canvas: uint8 RGB ``(H, W, 3)`` in the camera's pixel grid (corner-based pixels). An
optional ``ids`` map (int32) records, per pixel, the target id of the object drawn last
(0 for anything else), which tells whether the target is visible and where.
"""

from __future__ import annotations

import cv2
import numpy as np

from smgeo_synth.capture import MARK_COLOURS, Capture, vehicle_corners
from smgeo_synth.ground import solid_table
from smgeo_synth.scene import Scene, Solid

SHIFT = 4
ONE = 1 << SHIFT

_rng = np.random.default_rng(20240601)
_dirs = _rng.normal(size=(16, 7, 3))
_dirs[..., 2] = np.abs(_dirs[..., 2]) * 0.8 + 0.15
CLUMP_DIRS = _dirs / np.linalg.norm(_dirs, axis=-1, keepdims=True)
CLUMP_SIZE = _rng.uniform(0.42, 0.6, (16, 7))
CLUMP_TONE = _rng.uniform(0.9, 1.1, (16, 7))
_add = np.add.reduce


def _plane_normal(p: np.ndarray) -> np.ndarray:
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = p[0].tolist(), p[1].tolist(), p[2].tolist()
    ux, uy, uz, vx, vy, vz = bx - ax, by - ay, bz - az, cx - ax, cy - ay, cz - az
    n = [uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx]
    ln = max((n[0] ** 2 + n[1] ** 2 + n[2] ** 2) ** 0.5, 1e-12) * (1 if n[2] >= 0 else -1)
    return np.array([n[0] / ln, n[1] / ln, n[2] / ln])


class Faces:
    """Faces of a solid: all vertices ``pts`` (M, 3), ``start`` offsets (F+1,), ``normals``
    (F, 3) outward unit normals, ``cents`` (F, 3) centroids and ``roof`` (F,) bool."""

    __slots__ = ("pts", "start", "normals", "cents", "roof")


def solid_faces(s: Solid) -> Faces:
    """Faces of a solid: walls (one per footprint edge, in edge order), then the roof: two
    planes and two gable ends (pitched 4-vertex solids), else one roof polygon (flat, or shed
    on 4 vertices: edge 2-3 raised). Cached on the solid."""
    if s.faces_cache is not None:
        return s.faces_cache
    if len(s.foot) == 4:
        cache_quad_faces([s])
        return s.faces_cache
    f = s.foot
    n = len(f)
    tops = np.full(n, s.top)
    nxt = list(range(1, n)) + [0]
    fn = f[nxt]
    e = fn - f
    ln = np.maximum(np.sqrt((e * e).sum(1)), 1e-12)
    wall_n = np.zeros((n, 3))
    wall_n[:, 0], wall_n[:, 1] = e[:, 1] / ln, -e[:, 0] / ln
    walls = np.empty((n, 4, 3))
    walls[:, 0, :2], walls[:, 1, :2], walls[:, 2, :2], walls[:, 3, :2] = f, fn, fn, f
    walls[:, 0, 2], walls[:, 1, 2], walls[:, 2, 2], walls[:, 3, 2] = s.base, s.base, tops[nxt], tops
    roof = np.empty((n, 3))
    roof[:, :2], roof[:, 2] = f, tops
    normal = _plane_normal(roof) if s.roof == "shed" else np.array([0.0, 0.0, 1.0])
    # np.add.reduce(x, axis) / count is what ndarray.mean computes, without its Python overhead
    _set_faces(s, np.concatenate([walls.reshape(-1, 3), roof]), np.array(list(range(0, 4 * n + 1, 4)) + [5 * n]),
               np.vstack([wall_n, normal]), np.vstack([_add(walls, 1) / 4, _add(roof, 0) / n]),
               np.array([False] * n + [True]))
    return s.faces_cache


def cache_quad_faces(solids: list[Solid]) -> None:
    """Fill the :func:`solid_faces` cache of every uncached 4-vertex solid in ``solids`` at
    once, vectorised over solids (most solids are 4-vertex houses, halls and roof units, and
    per-solid numpy calls are slow); each solid's arrays do not depend on the others."""
    todo = [s for s in solids if len(s.foot) == 4 and s.faces_cache is None]
    if not todo:
        return
    pitched = [s.roof in ("gable", "hip") and s.rise > 0 for s in todo]
    for group in ([s for s, p in zip(todo, pitched) if p], [s for s, p in zip(todo, pitched) if not p]):
        if group:
            _quad_faces(group)


def _quad_faces(group: list[Solid]) -> None:
    n = len(group)
    f = np.stack([s.foot for s in group])  # (n, 4, 2)
    top = np.array([s.top for s in group])
    base = np.array([s.base for s in group])
    tops = np.repeat(top[:, None], 4, 1)
    shed = np.array([s.roof == "shed" for s in group])
    if shed.any():
        tops[shed, 2:4] += np.array([s.rise for s in group])[shed, None]
    nxt = [1, 2, 3, 0]
    fn = f[:, nxt]
    e = fn - f
    ln = np.maximum(np.sqrt((e * e).sum(2)), 1e-12)
    wall_n = np.zeros((n, 4, 3))
    wall_n[..., 0], wall_n[..., 1] = e[..., 1] / ln, -e[..., 0] / ln
    walls = np.empty((n, 4, 4, 3))
    walls[:, :, 0, :2], walls[:, :, 1, :2], walls[:, :, 2, :2], walls[:, :, 3, :2] = f, fn, fn, f
    walls[:, :, 0, 2], walls[:, :, 1, 2] = base[:, None], base[:, None]
    walls[:, :, 2, 2], walls[:, :, 3, 2] = tops[:, nxt], tops
    wall_cents = _add(walls, 2) / 4
    if group[0].roof in ("gable", "hip") and group[0].rise > 0:  # the whole group is pitched
        zr = top + np.array([s.rise for s in group])
        r = np.array([np.concatenate(ridge(s)) for s in group])  # (n, 4): r0x, r0y, r1x, r1y
        planes = np.empty((n, 2, 4, 3))
        planes[:, 0, :2, :2], planes[:, 1, :2, :2] = f[:, 0:2], f[:, 2:4]
        planes[:, 0, 2, :2], planes[:, 0, 3, :2] = r[:, 2:4], r[:, 0:2]
        planes[:, 1, 2, :2], planes[:, 1, 3, :2] = r[:, 0:2], r[:, 2:4]
        planes[:, :, :2, 2], planes[:, :, 2:, 2] = top[:, None, None], zr[:, None, None]
        ends = np.empty((n, 2, 3, 3))
        ends[:, 0, :2, :2], ends[:, 1, 0, :2], ends[:, 1, 1, :2] = f[:, 1:3], f[:, 3], f[:, 0]
        ends[:, 0, 2, :2], ends[:, 1, 2, :2] = r[:, 2:4], r[:, 0:2]
        ends[:, :, :2, 2], ends[:, :, 2, 2] = top[:, None, None], zr[:, None]
        pts = np.concatenate([walls.reshape(n, 16, 3), planes.reshape(n, 8, 3), ends.reshape(n, 6, 3)], 1)
        cents = np.concatenate([wall_cents, _add(planes, 2) / 4, _add(ends, 2) / 3], 1)
        start = np.array([0, 4, 8, 12, 16, 20, 24, 27, 30])
        for k, s in enumerate(group):
            hip = s.roof == "hip"
            normals = [_plane_normal(planes[k, 0]), _plane_normal(planes[k, 1]),
                       _plane_normal(ends[k, 0]) if hip else wall_n[k, 1],
                       _plane_normal(ends[k, 1]) if hip else wall_n[k, 3]]
            _set_faces(s, pts[k], start, np.vstack([wall_n[k]] + normals), cents[k],
                       np.array([False] * 4 + [True, True, hip, hip]))
        return
    roof_pts = np.empty((n, 4, 3))
    roof_pts[..., :2], roof_pts[..., 2] = f, tops
    pts = np.concatenate([walls.reshape(n, 16, 3), roof_pts], 1)
    cents = np.concatenate([wall_cents, (_add(roof_pts, 1) / 4)[:, None]], 1)
    start = np.array([0, 4, 8, 12, 16, 20])
    roof = np.array([False] * 4 + [True])
    up = np.array([0.0, 0.0, 1.0])
    for k, s in enumerate(group):
        normal = _plane_normal(roof_pts[k]) if s.roof == "shed" else up
        _set_faces(s, pts[k], start, np.vstack([wall_n[k], normal]), cents[k], roof)


def _set_faces(s: Solid, pts, start, normals, cents, roof) -> None:
    fc = Faces()
    fc.pts, fc.start, fc.normals, fc.cents, fc.roof = pts, start, normals, cents, roof
    s.faces_cache = fc


def ridge(s: Solid) -> tuple[np.ndarray, np.ndarray]:
    """End points (x, y) of the ridge of a gable or hip roof."""
    f = s.foot
    r0, r1 = (f[0] + f[3]) / 2, (f[1] + f[2]) / 2
    if s.roof == "hip":
        d = r1 - r0
        ln = max(float(np.hypot(*d)), 1e-9)
        k = min(float(np.hypot(*(f[3] - f[0]))) / 2, 0.45 * ln) / ln
        r0, r1 = r0 + d * k, r1 - d * k
    return r0, r1


def ridge_line(s: Solid) -> np.ndarray:
    """(2, 3) end points (x, y, z) of the ridge of a gable or hip roof, cached on the solid."""
    if s.ridge_cache is None:
        r0, r1 = ridge(s)
        s.ridge_cache = np.array([[*r0, s.top + s.rise], [*r1, s.top + s.rise]])
    return s.ridge_cache


def project_polygon(cam, pts: np.ndarray) -> np.ndarray | None:
    """Project a planar polygon, clipping it to the near plane (perspective cameras)."""
    if not cam.perspective:
        return cam.project(pts)[0]
    v = cam.camera_coords(pts)
    inside = v[:, 2] >= cam.near
    if inside.all():
        return cam.uv_from_camera(v)
    if not inside.any():
        return None
    out = []
    for i in range(len(v)):
        a, b = v[i], v[(i + 1) % len(v)]
        ia, ib = a[2] >= cam.near, b[2] >= cam.near
        if ia:
            out.append(a)
        if ia != ib:
            t = (cam.near - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return cam.uv_from_camera(np.array(out)) if len(out) >= 3 else None


def _rgb(c) -> tuple[int, int, int]:
    return (min(255, max(0, int(c[0] * 255.0))), min(255, max(0, int(c[1] * 255.0))),
            min(255, max(0, int(c[2] * 255.0))))


def _rgb_rows(c: np.ndarray) -> list[tuple[int, int, int]]:
    """:func:`_rgb` of every row of ``c`` (N, 3), vectorised (same truncation and clamping)."""
    return list(map(tuple, np.clip((c * 255.0).astype(np.int64), 0, 255).tolist()))


def cv_coords(uv: np.ndarray) -> np.ndarray:
    return np.round((uv - 0.5) * ONE).astype(np.int32)


class Painter:
    """Draws the scene's objects for one camera and capture onto ``canvas``."""

    def __init__(self, canvas: np.ndarray, cam, scene: Scene, cap: Capture, ids: np.ndarray | None = None,
                 target: int = 0, raw: np.ndarray | None = None, target_box=None) -> None:
        self.canvas, self.cam, self.scene, self.cap = canvas, cam, scene, cap
        self.ids, self.target, self.raw = ids, target, raw
        self.h, self.w = canvas.shape[:2]
        self.target_box = target_box  # screen box (x0, y0, x1, y1) of the target, for the id map
        self.wall_light = 0.86

    # --- scheduling ---------------------------------------------------------------------
    def draw(self) -> None:
        cam, scene, cap = self.cam, self.scene, self.cap
        vb = cam.view_bounds(scene.max_height)
        tab = solid_table(scene)
        b = tab["bounds"]
        sel = ((tab["presence"] & cap.bit) > 0) & (b[:, 0] < vb[2]) & (b[:, 2] > vb[0]) & (b[:, 1] < vb[3]) \
            & (b[:, 3] > vb[1])
        solids = [scene.solids[k] for k in np.flatnonzero(sel)]
        t = scene.trees
        trees = t[((t[:, 5].astype(int) & cap.bit) > 0) & (t[:, 0] > vb[0]) & (t[:, 0] < vb[2])
                  & (t[:, 1] > vb[1]) & (t[:, 1] < vb[3])] if len(t) else t
        anchor: dict[int, tuple] = {}
        reps = []
        for s in solids:
            c = s.centre_cache
            if c is None:
                m = _add(s.foot, 0) / len(s.foot)  # == s.foot.mean(0)
                c = s.centre_cache = (m[0], m[1], (s.base + s.height()) / 2)
            if s.group > 0:
                c = anchor.setdefault(s.group, c)
            reps.append(c)
        if len(trees):
            reps += trees[:, [0, 1, 3]].tolist()
        self._vehicles(vb)
        if not reps:
            return
        _, depth = cam.project(np.array(reps))
        depth = depth.tolist()  # far to near (depth rounded to mm), then the order within a group
        keys = [(-round(d, 3), s.order) for d, s in zip(depth, solids)] + \
            [(-round(d, 3), 0) for d in depth[len(solids):]]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._prepare(solids)
        tree_data = self._tree_data(trees) if len(trees) else None
        for i in order:
            if i < len(solids):
                self._solid(solids[i], i)
            else:
                self._tree(tree_data, i - len(solids))

    # --- solids ---------------------------------------------------------------------------
    def _prepare(self, solids: list[Solid]) -> None:
        """Project, cull and shade the faces of all ``solids`` at once."""
        if not solids:
            return
        cam = self.cam
        cache_quad_faces(solids)
        faces = [solid_faces(s) for s in solids]
        n_pts = np.array([len(f.pts) for f in faces])
        n_faces = np.array([len(f.normals) for f in faces])
        self.pt_off = np.r_[0, np.cumsum(n_pts)]
        self.face_off = np.r_[0, np.cumsum(n_faces)]
        self.faces = faces
        pts = np.concatenate([f.pts for f in faces])
        normals = np.concatenate([f.normals for f in faces])
        cents = np.concatenate([f.cents for f in faces])
        roof = np.concatenate([f.roof for f in faces])
        uv, depth = cam.project(pts)
        self.uv, self.pix = uv, cv_coords(uv)
        self.vis = cam.facing(normals, cents)
        self.face_depth = cam.project(cents)[1] if cam.perspective else None
        light = self.cap.light(normals)
        self.light = light
        owner = np.repeat(np.arange(len(solids)), n_faces)
        wall_rgb = np.array([s.wall_rgb for s in solids])[owner] * (light * self.wall_light)[:, None]
        roof_rgb = np.array([s.roof_rgb for s in solids])[owner] * light[:, None]
        rgb = np.where(roof[:, None], roof_rgb, wall_rgb)
        self.colours = np.clip(rgb * 255, 0, 255).astype(int).tolist()
        starts = self.pt_off[:-1]
        self.bbox = np.stack([np.minimum.reduceat(uv[:, 0], starts), np.minimum.reduceat(uv[:, 1], starts),
                              np.maximum.reduceat(uv[:, 0], starts), np.maximum.reduceat(uv[:, 1], starts)], 1)
        self.clip = np.minimum.reduceat(depth, starts) < cam.near if cam.perspective else np.zeros(len(solids), bool)
        self.window_ok = self._window_candidates(solids, faces, pts)
        # Python lists of what _solid reads per solid (indexing numpy arrays one item at a time is slow)
        self.bbox_rows, self.face_rows, self.pt_rows = self.bbox.tolist(), self.face_off.tolist(), self.pt_off.tolist()
        self.vis_rows, self.clip_rows = self.vis.tolist(), self.clip.tolist()

    def _window_candidates(self, solids: list[Solid], faces: list[Faces], pts: np.ndarray) -> np.ndarray:
        """Per face: False where :meth:`_windows` would draw nothing on an unclipped wall (its
        own first tests, for all walls at once: under 2.5 m tall, or both vertical edges
        under 10 px on screen)."""
        ok = np.ones(int(self.face_off[-1]), bool)
        n_walls = np.array([len(s.foot) if s.windows > 0 else 0 for s in solids])
        if not n_walls.any():
            return ok
        owner = np.repeat(np.arange(len(solids)), n_walls)
        j = np.arange(len(owner)) - np.repeat(np.cumsum(n_walls) - n_walls, n_walls)  # wall index in its solid
        p0 = self.pt_off[owner] + 4 * j
        uv = [self.pix[p0 + m] / ONE + 0.5 for m in range(4)]
        short = (np.hypot(*(uv[3] - uv[0]).T) < 10) & (np.hypot(*(uv[2] - uv[1]).T) < 10)
        low = np.minimum(pts[p0 + 2, 2], pts[p0 + 3, 2]) - pts[p0, 2] < 2.5
        ok[self.face_off[owner] + j] = ~(short | low)
        return ok

    def _fill(self, pts: np.ndarray, colour, tid: int, ids: bool) -> None:
        cv2.fillPoly(self.canvas, [pts], colour, cv2.LINE_AA, SHIFT)
        if ids:
            cv2.fillPoly(self.ids, [pts], int(tid == self.target) * self.target, cv2.LINE_8, SHIFT)
        if self.raw is not None and tid == self.target:
            cv2.fillPoly(self.raw, [pts], 255, cv2.LINE_8, SHIFT)

    def _solid(self, s: Solid, i: int) -> None:
        cam = self.cam
        x0, y0, x1, y1 = self.bbox_rows[i]
        if x1 < 0 or x0 > self.w or y1 < 0 or y0 > self.h:
            return
        f0, f1 = self.face_rows[i], self.face_rows[i + 1]
        seen = self.vis_rows
        vis = [k for k in range(f1 - f0) if seen[f0 + k]]
        if not vis:
            return
        fc = self.faces[i]
        p0 = self.pt_rows[i]
        clip = self.clip_rows[i]
        start = fc.start.tolist()
        tb = self.target_box
        ids = self.ids is not None and s.kind != "vehicle" and (
            tb is None or (x1 >= tb[0] and x0 <= tb[2] and y1 >= tb[1] and y0 <= tb[3]))
        walls, roofs = [], []
        for k in vis:
            a, b = start[k], start[k + 1]
            if clip:
                uv = project_polygon(cam, fc.pts[a:b])
                if uv is None:
                    continue
                pts = cv_coords(uv)
            else:
                pts = self.pix[p0 + a:p0 + b]
            (roofs if fc.roof[k] else walls).append((k, pts))
        if len(walls) > 1 and self.face_depth is not None:
            d = self.face_depth[f0 + np.array([k for k, _ in walls])]
            walls = [walls[j] for j in np.argsort(-d)]
        for k, pts in walls:
            self._fill(pts, self.colours[f0 + k], s.tid, ids)
            if s.windows > 0 and (clip or self.window_ok[f0 + k]):
                self._windows(s, fc, k, pts, float(self.light[f0 + k]))
        for k, pts in roofs:
            self._fill(pts, self.colours[f0 + k], s.tid, ids)
            if s.roof in ("gable", "hip") and cam.perspective:
                self._tiles(fc, k, pts, s.roof_rgb, float(self.light[f0 + k]))
        if not roofs:
            return
        rr = s.roof_rgb
        lr = float(self.light[f1 - 1])
        if s.parapet and len(s.foot) == 4:
            if x1 - x0 > 8:
                self._parapet(s, lr)
        elif s.roof in ("gable", "hip") and s.rise > 0 and x1 - x0 > 6:
            ends = self._ridge_pixels(s, p0)
            if ends is not None:
                cv2.line(self.canvas, ends[0], ends[1], _rgb(np.asarray(rr) * 0.7 * lr), 1, cv2.LINE_AA, SHIFT)
        for m in s.deck_marks:
            px = float(cam.px_per_m(cam.project(np.c_[m.segs[0], np.full(2, m.z)])[1]).mean()) * m.width
            colour = _rgb(np.asarray(MARK_COLOURS[m.colour]) * min(1.0, px) + np.asarray(rr) * lr * (1 - min(1.0, px)))
            for seg in m.segs:
                uv = project_polygon(cam, np.c_[seg, np.full(2, m.z)])
                if uv is not None and len(uv) == 2:
                    cv2.line(self.canvas, tuple(cv_coords(uv[0])), tuple(cv_coords(uv[1])), colour, max(1, int(round(px))),
                             cv2.LINE_AA, SHIFT)

    def _ridge_pixels(self, s: Solid, p0: int) -> list | None:
        """Drawing coordinates of the two ends of a pitched roof's ridge (None where the near
        plane cuts it). The parallel camera projects point by point, so its projection of the
        faces (roof plane 0 ends with r1, r0) is reused; a perspective camera projects anew."""
        if not self.cam.perspective and len(s.foot) == 4:
            return [self.pix[p0 + 19].tolist(), self.pix[p0 + 18].tolist()]
        uv = project_polygon(self.cam, ridge_line(s))
        return cv_coords(uv).tolist() if uv is not None and len(uv) == 2 else None

    def _tiles(self, fc: Faces, k: int, pts: np.ndarray, rgb, light: float) -> None:
        """Rows of roof tiles on a pitched roof plane, when they are resolved (drone views)."""
        p = fc.pts[fc.start[k]:fc.start[k + 1]]
        if len(pts) != 4 or len(p) != 4:
            return
        uv = pts / ONE + 0.5
        slope = float(np.linalg.norm((p[3] + p[2]) / 2 - (p[0] + p[1]) / 2))
        n = int(slope / 0.45)
        step_px = float(np.hypot(*((uv[3] + uv[2]) / 2 - (uv[0] + uv[1]) / 2))) / max(n, 1)
        if n < 2 or step_px < 2.2:
            return
        t = (np.arange(1, n) / n)[:, None]
        a = uv[0] + (uv[3] - uv[0]) * t
        b = uv[1] + (uv[2] - uv[1]) * t
        lines = list(cv_coords(np.stack([a, b], 1)))
        cv2.polylines(self.canvas, lines, False, _rgb(np.asarray(rgb) * light * 0.78), 1, cv2.LINE_AA, SHIFT)

    def _parapet(self, s: Solid, light: float) -> None:
        f = s.foot
        e1, e2 = f[1] - f[0], f[3] - f[0]
        l1, l2 = np.linalg.norm(e1), np.linalg.norm(e2)
        if min(l1, l2) < 4:
            return
        a, b = 0.7 * e1 / l1, 0.7 * e2 / l2
        inset = np.array([f[0] + a + b, f[1] - a + b, f[2] - a - b, f[3] + a - b])
        uv = project_polygon(self.cam, np.c_[inset, np.full(4, s.top)])
        if uv is not None:
            cv2.fillPoly(self.canvas, [cv_coords(uv)], _rgb(np.asarray(s.roof_rgb) * light * 0.9), cv2.LINE_AA, SHIFT)

    def _vehicles(self, vb) -> None:
        """All vehicles of the capture, vectorised: body silhouette, roof, cabin glass."""
        v = self.cap.vehicles
        if not len(v):
            return
        v = v[(v[:, 0] > vb[0]) & (v[:, 0] < vb[2]) & (v[:, 1] > vb[1]) & (v[:, 1] < vb[3])]
        if not len(v):
            return
        n = len(v)
        foot = vehicle_corners(v)
        h = v[:, 5]
        c = foot.mean(1, keepdims=True)
        e1 = (foot[:, 1:2] - foot[:, 0:1]) / 2
        e2 = (foot[:, 3:4] - foot[:, 0:1]) / 2
        glass = c + e1 * np.array([-0.55, 0.35, 0.35, -0.55])[None, :, None] \
            + e2 * np.array([-0.85, -0.85, 0.85, 0.85])[None, :, None]
        cabin = c + e1 * np.array([-0.3, 0.1, 0.1, -0.3])[None, :, None] \
            + e2 * np.array([-0.8, -0.8, 0.8, 0.8])[None, :, None]
        z = lambda a, zz: np.concatenate([a, np.broadcast_to(zz[:, None, None], a.shape[:2] + (1,))], 2)  # noqa: E731
        pts = np.concatenate([z(foot, np.zeros(n)), z(foot, h), z(glass, h + 0.05), z(cabin, h + 0.06)], 1)
        uv, depth = self.cam.project(pts.reshape(-1, 3))
        uv, depth = uv.reshape(n, 16, 2), depth.reshape(n, 16)
        near = getattr(self.cam, "near", -np.inf)
        ok = (depth.min(1) > near) & (uv[..., 0].max(1) > 0) & (uv[..., 0].min(1) < self.w) \
            & (uv[..., 1].max(1) > 0) & (uv[..., 1].min(1) < self.h)
        light_top = float(self.cap.light(np.array([[0.0, 0.0, 1.0]]))[0])
        glass_rgb = _rgb(np.array([0.12, 0.13, 0.15]) * light_top)
        pix = cv_coords(uv)
        size = np.ptp(uv[:, 4:8, 0], 1) + np.ptp(uv[:, 4:8, 1], 1)
        lit = v[:, 6:9] * light_top
        sides, roofs, cabins = (_rgb_rows(lit * 0.62), _rgb_rows(lit), _rgb_rows(lit * 0.95))
        for i in np.flatnonzero(ok).tolist():
            cv2.fillConvexPoly(self.canvas, cv2.convexHull(pix[i, :8]), sides[i], cv2.LINE_AA, SHIFT)
            cv2.fillConvexPoly(self.canvas, pix[i, 4:8], roofs[i], cv2.LINE_AA, SHIFT)
            if size[i] >= 5:
                cv2.fillConvexPoly(self.canvas, pix[i, 8:12], glass_rgb, cv2.LINE_AA, SHIFT)
                cv2.fillConvexPoly(self.canvas, pix[i, 12:16], cabins[i], cv2.LINE_AA, SHIFT)

    def _windows(self, s: Solid, fc: Faces, k: int, pts: np.ndarray, light: float) -> None:
        quad = fc.pts[fc.start[k]:fc.start[k + 1]]
        if len(quad) != 4 or len(pts) != 4:
            return
        uv = pts / ONE + 0.5
        a, b = quad[0, :2], quad[1, :2]
        z0, z1 = quad[0, 2], min(quad[2, 2], quad[3, 2])
        if z1 - z0 < 2.5:
            return
        if np.hypot(*(uv[3] - uv[0])) < 10 and np.hypot(*(uv[2] - uv[1])) < 10:
            return
        length = float(np.hypot(*(b - a)))
        spacing = s.windows
        n_w = int((length - 1.0) // spacing)
        n_f = int((z1 - z0 - 0.8) // 3.0)
        if n_w < 1 or n_f < 1:
            return
        e = (b - a) / length
        nrm = fc.normals[k][:2] * 0.05
        start = (length - (n_w - 1) * spacing) / 2
        hw = min(0.6, 0.2 * spacing)
        s_c = start + spacing * np.arange(n_w)
        z_c = z0 + 1.7 + 3.0 * np.arange(n_f)
        S, Z = np.meshgrid(s_c, z_c)
        S, Z = S.ravel(), Z.ravel()
        corners = []
        for ds, dz in ((-hw, -0.6), (hw, -0.6), (hw, 0.6), (-hw, 0.6)):
            xy = a + nrm + (S + ds)[:, None] * e
            corners.append(np.c_[xy, Z + dz])
        pts = np.stack(corners, 1)
        uvw, depth = self.cam.project(pts.reshape(-1, 3))
        if (depth < getattr(self.cam, "near", -1e9)).any():
            return
        polys = list(cv_coords(uvw.reshape(-1, 4, 2)))
        glass = np.array([0.16, 0.19, 0.24]) * (0.6 + 0.4 * light)
        cv2.fillPoly(self.canvas, polys, _rgb(glass), cv2.LINE_AA, SHIFT)

    # --- trees ----------------------------------------------------------------------------
    def _tree_data(self, trees: np.ndarray) -> dict:
        n = len(trees)
        k = trees[:, 6].astype(int) % 16
        x, y, r, h = trees[:, 0], trees[:, 1], trees[:, 2], trees[:, 3]
        centre = np.c_[x, y, h]
        dirs = CLUMP_DIRS[k] * np.array([1.0, 1.0, 1.25])  # crowns a little taller than wide
        clumps = centre[:, None] + dirs * (0.55 * r)[:, None, None]
        trunk = np.stack([np.c_[x, y, np.zeros(n)], np.c_[x, y, h - 0.5 * r]], 1)
        low = np.c_[x, y, h - 0.35 * r][:, None]
        pts = np.concatenate([centre[:, None], clumps, trunk, low], 1)  # (n, 11, 3)
        uv, depth = self.cam.project(pts.reshape(-1, 3))
        uv, depth = uv.reshape(n, 11, 2), depth.reshape(n, 11)
        ppm = self.cam.px_per_m(depth)
        albedo = self.cap.tree_rgb(trees[:, 4])
        lights = self.cap.light(CLUMP_DIRS.reshape(-1, 3)).reshape(16, 7)[k] * CLUMP_TONE[k]
        radius = (CLUMP_SIZE[k] * r[:, None] * ppm[:, 1:8] * ONE).astype(int)
        colours = np.clip(albedo[:, None, :] * lights[..., None] * 0.92 * 255, 0, 255).astype(int)
        r_px = r * ppm[:, 0]
        c = uv[:, 0]
        show = (c[:, 0] >= -r_px) & (c[:, 0] <= self.w + r_px) & (c[:, 1] >= -r_px) & (c[:, 1] <= self.h + r_px)
        if self.cam.perspective:
            show &= depth.min(1) >= self.cam.near
        tb = self.target_box
        near_target = np.ones(n, bool) if tb is None else \
            (c[:, 0] + r_px >= tb[0]) & (c[:, 0] - r_px <= tb[2]) & (c[:, 1] + r_px >= tb[1]) & (c[:, 1] - r_px <= tb[3])
        trunk = np.abs(uv[:, 9, 0] - uv[:, 8, 0]) + np.abs(uv[:, 9, 1] - uv[:, 8, 1]) > 2
        return {"show": show.tolist(), "near_target": near_target.tolist(), "trunk": trunk.tolist(),
                "crown_px": (r_px * 0.92 * ONE).astype(int).tolist(), "pix": cv_coords(uv).tolist(),
                "trunk_px": np.maximum(1, np.round(0.35 * ppm[:, 8])).astype(int).tolist(),
                "dark": np.clip(albedo * 0.55 * 255, 0, 255).astype(int).tolist(), "order": np.argsort(lights, 1).tolist(),
                "radius": radius.tolist(), "colours": colours.tolist()}

    def _tree(self, d: dict, i: int) -> None:
        if not d["show"][i]:  # behind the camera or off screen
            return
        pix = d["pix"][i]
        if d["trunk"][i]:
            cv2.line(self.canvas, pix[8], pix[9], (56, 46, 36), d["trunk_px"][i], cv2.LINE_AA, SHIFT)
        rad = d["crown_px"][i]
        dark = d["dark"][i]
        cv2.circle(self.canvas, pix[0], rad, dark, -1, cv2.LINE_AA, SHIFT)
        cv2.circle(self.canvas, pix[10], rad, dark, -1, cv2.LINE_AA, SHIFT)
        if self.ids is not None and d["near_target"][i]:
            cv2.circle(self.ids, pix[0], rad, 0, -1, cv2.LINE_8, SHIFT)
            cv2.circle(self.ids, pix[10], rad, 0, -1, cv2.LINE_8, SHIFT)
        radius, colours = d["radius"][i], d["colours"][i]
        for j in d["order"][i]:
            if radius[j] >= 6:
                cv2.circle(self.canvas, pix[1 + j], radius[j], colours[j], -1, cv2.LINE_AA, SHIFT)


def draw_objects(canvas: np.ndarray, cam, scene: Scene, cap: Capture, ids: np.ndarray | None = None,
                 target: int = 0, raw: np.ndarray | None = None, target_box=None) -> None:
    """Paint every solid, vehicle and tree of ``scene`` present in ``cap`` onto ``canvas``."""
    Painter(canvas, cam, scene, cap, ids, target, raw, target_box).draw()
