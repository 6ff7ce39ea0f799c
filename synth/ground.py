"""Ground-plane render: land cover, roads, painted lines, crop rows and cast shadows.

:func:`render_ground` draws everything on z = 0 for a raster *window* of the scene:
pixel (col, row) covers scene metres ``[wx0 + col*res, wx0 + (col+1)*res) x
[wy0 + row*res, wy0 + (row+1)*res)`` (x east, y south). The satellite uses its tile as the
window; the drone renders the window it sees at a finer pixel size and warps it.
Textures come from world-anchored noise, so both renders show the same patches; colours,
crops, shadows and vehicles come from the :class:`~.capture.Capture`.
"""

from __future__ import annotations

import operator

import cv2
import numpy as np

from smgeo_synth import geometry as geo
from smgeo_synth.capture import MARK_COLOURS, MATERIALS, Capture, vehicle_corners
from smgeo_synth.noise import WorldNoise, noise_crop
from smgeo_synth.scene import Scene, Solid, cache_ground_bounds

SHIFT = 3
ONE = 1 << SHIFT


def cv_points(p: np.ndarray, window, res: float) -> np.ndarray:
    """Scene metres -> int32 OpenCV drawing coordinates (pixel centres at integers, SHIFT bits)."""
    q = ((p - (window[0], window[1])) / res - 0.5) * ONE
    return np.round(q).astype(np.int32)


def _noises(scene: Scene) -> tuple[WorldNoise, WorldNoise]:
    """Large (40 m cells) and mid (2.2 m cells plus an 8.8 m octave) world noise of a scene."""
    if scene.caches.noise is None:
        b = (-300.0, -300.0, scene.size + 300.0, scene.size + 300.0)
        scene.caches.noise = (WorldNoise(scene.seed + 11, b, 40.0), WorldNoise(scene.seed + 12, b, 2.2, octaves=1))
    return scene.caches.noise


def _ground_tables(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    cache = scene.caches.ground_tables
    if cache is None or cache[0] != scene.version:
        cache_ground_bounds(scene.ground)
        bounds = np.array([g.bounds() for g in scene.ground]).reshape(-1, 4)
        amps = np.array([(0.10, 0.10, 0.10)] + [MATERIALS[g.material][1:4] for g in scene.ground], dtype=np.float32)
        cache = (scene.version, bounds, amps)
        scene.caches.ground_tables = cache
    return cache[1], cache[2]


def _palette(scene: Scene, cap: Capture) -> np.ndarray:
    cache = cap.palette_cache
    if cache is None or cache[0] is not scene or cache[1] != scene.version:
        feats = cap.palette([g.material for g in scene.ground], np.array([g.var for g in scene.ground]))
        pal = np.concatenate([cap.material_rgb("grass", 0.5)[None], feats.reshape(-1, 3)]).astype(np.float32)
        cache = (scene, scene.version, pal)
        cap.palette_cache = cache
    return cache[2]


def _overlaps(bounds: np.ndarray, window) -> np.ndarray:
    return ((bounds[:, 0] < window[2]) & (bounds[:, 2] > window[0]) & (bounds[:, 1] < window[3])
            & (bounds[:, 3] > window[1]))


_BAND = 1 << 15  # pixels per band of the ground composition (see render_ground)
_TEXTURE: dict[str, np.ndarray] = {}
TEXEL = 0.2  # metres per texel of the fine world texture


def fine_texture(blurred: bool) -> np.ndarray:
    """Tileable 1/f noise (1024^2 texels of ``TEXEL`` m, unit variance), the same in every
    process: grass blades, gravel, asphalt grain at drone resolution."""
    key = "blur" if blurred else "sharp"
    if key not in _TEXTURE:
        rng = np.random.default_rng(1234567)
        n = 1024
        f = np.fft.fftfreq(n)
        r = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
        spec = np.fft.fft2(rng.standard_normal((n, n))) / np.maximum(r, 1.0 / n) ** 0.8
        tex = np.real(np.fft.ifft2(spec)).astype(np.float32)
        tex = (tex - tex.mean()) / tex.std()
        _TEXTURE["sharp"] = tex
        blur = cv2.GaussianBlur(np.tile(tex, (3, 3)), (0, 0), 1.6)[n:2 * n, n:2 * n]
        _TEXTURE["blur"] = blur / blur.std()
    return _TEXTURE[key]


_TILED: dict[str, np.ndarray] = {}
MAX_TILES = 6  # largest tiled copy of a fine texture kept per process: 6 x 6 x 4 MiB


def _tiled_texture(blurred: bool, rows: float, cols: float) -> np.ndarray:
    """:func:`fine_texture` repeated to cover texel coordinates ``[0, rows) x [0, cols)``
    (at most :data:`MAX_TILES` periods a side), cached per process. Its size is a whole
    number of periods, so wrapping it is wrapping the texture: a BORDER_WRAP warp reads the
    same texels (same result, bit for bit) but takes OpenCV's fast in-range path instead
    of its per-pixel border path wherever the coordinates fall inside it."""
    tex = fine_texture(blurred)
    n = tex.shape[0]
    ty = int(min(MAX_TILES, max(1, -(-rows // n))))
    tx = int(min(MAX_TILES, max(1, -(-cols // n))))
    key = "blur" if blurred else "sharp"
    big = _TILED.get(key)
    if big is None or big.shape[0] < ty * n or big.shape[1] < tx * n:
        side = max(ty, tx, big.shape[0] // n if big is not None else 1)  # square: grows at most a few times
        big = _TILED[key] = np.tile(tex, (side, side))
    return big


def _sample_texture(window, res: float, shape: tuple[int, int]) -> np.ndarray:
    k = res / TEXEL
    m = np.array([[k, 0, (window[0] + 0.5 * res) / TEXEL - 0.5], [0, k, (window[1] + 0.5 * res) / TEXEL - 0.5]])
    tex = _tiled_texture(res > 2 * TEXEL, m[1, 2] + k * shape[0] + 2, m[0, 2] + k * shape[1] + 2)
    return cv2.warpAffine(tex, m, (shape[1], shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_WRAP)


def render_ground(scene: Scene, cap: Capture, window: tuple[float, float, float, float], res: float,
                  rng: np.random.Generator) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of the ground in ``window`` (scene metres) at ``res`` m/px."""
    w = int(round((window[2] - window[0]) / res))
    h = int(round((window[3] - window[1]) / res))
    bounds, amps = _ground_tables(scene)
    fid = np.zeros((h, w), np.int32)
    seen = np.flatnonzero(_overlaps(bounds, window)).tolist()
    if seen:
        feats = [scene.ground[i] for i in seen]
        ends = np.cumsum([len(g.pts) for g in feats]).tolist()
        pix = cv_points(np.concatenate([g.pts for g in feats]), window, res)  # element-wise: one call for all
        for i, g, a, b in zip(seen, feats, [0] + ends, ends):
            if g.width > 0:
                cv2.polylines(fid, [pix[a:b]], False, i + 1, thickness=max(1, int(round(g.width / res))),
                              lineType=cv2.LINE_8, shift=SHIFT)
            else:
                cv2.fillPoly(fid, [pix[a:b]], i + 1, lineType=cv2.LINE_8, shift=SHIFT)
    n_large, n_mid = (n.sample(window, res, (h, w)) for n in _noises(scene))
    texture = _sample_texture(window, res, (h, w))
    grain = noise_crop(rng, h, w)
    # open land (feature 0) is grass with drier, browner patches: 12 palette levels
    n_feat = len(amps)
    pal = _palette(scene, cap) * 255.0
    dry = np.asarray(cap.material_rgb("soil", 0.5), dtype=np.float32) * 255.0
    mix = np.linspace(0, 0.55, 12, dtype=np.float32)[:, None]
    pal = np.concatenate([pal, pal[0] + (dry - pal[0]) * mix])
    amps = np.concatenate([amps, np.repeat(amps[:1], 12, 0)])
    a0, a1, a2 = (np.ascontiguousarray(amps[:, k]) for k in range(3))
    pal_rgb = [np.ascontiguousarray(pal[:, k]) for k in range(3)]
    out = np.empty((h, w, 3), np.uint8)
    # element-wise, so computed in bands of rows that stay in the CPU cache (same values)
    step = max(1, _BAND // max(w, 1))
    for y0 in range(0, h, step):
        rows = slice(y0, y0 + step)
        tex = texture[rows]
        tex += grain[rows, :, 0] * (0.35 / 64)
        nm = n_mid[rows]
        nm *= 0.85
        level = np.clip(nm * 12.1 + 5.45, 0, 11).astype(np.int32)  # 11 * (0.45 + 1.1 n), rounded
        f = fid[rows]
        f = np.where(f == 0, level + n_feat, f)
        mod = a0.take(f, mode="clip")  # == a0[f] (f is in range), without the bounds checks
        mod *= n_large[rows]
        mod += 1.0
        mod += a1.take(f, mode="clip") * nm
        mod += a2.take(f, mode="clip") * tex
        channels = []
        for p in pal_rgb:  # == convertScaleAbs(pal[f] * mod[..., None]), a channel at a time (faster)
            c = p.take(f, mode="clip")
            c *= mod
            channels.append(cv2.convertScaleAbs(c))
        out[rows] = cv2.merge(channels)
    _draw_rows(out, scene, cap, window, res)
    _draw_marks(out, scene, window, res)
    _draw_shadows(out, scene, cap, window, res)
    return out


def _multiply(img: np.ndarray, factor: np.ndarray, x: int, y: int, w: int, h: int) -> None:
    """In place: ``img[y:y+h, x:x+w] *= factor / 255`` (factor uint8, 1 or 3 channels)."""
    sub = img[y:y + h, x:x + w]
    if factor.ndim == 2:
        factor = cv2.merge([factor, factor, factor])
    sub[...] = cv2.multiply(sub, factor, scale=1 / 255.0)


def _draw_rows(img: np.ndarray, scene: Scene, cap: Capture, window, res: float) -> None:
    canvas = None
    for f in scene.fields:
        if not geo.boxes_overlap(geo.bbox(f.poly), window):
            continue
        _, contrast = cap.field_stage(f.var)
        contrast *= min(1.0, max(0.0, (f.spacing / res - 1.8) / 2.0))
        if contrast <= 0.01:
            continue
        c = f.poly.mean(0)
        r = float(np.max(np.hypot(*(f.poly - c).T))) + f.spacing
        along = np.array([np.cos(f.angle), np.sin(f.angle)])
        across = np.array([-along[1], along[0]])
        offs = np.arange(-r, r, f.spacing)
        p0 = c + offs[:, None] * across - r * along
        p1 = c + offs[:, None] * across + r * along
        segs = geo.clip_segments_convex(p0, p1, f.poly)
        if not len(segs):
            continue
        if canvas is None:
            canvas = np.zeros(img.shape[:2], np.uint8)
        pts = list(cv_points(segs, window, res))
        cv2.polylines(canvas, pts, False, int(255 * contrast), thickness=max(1, int(round(0.4 * f.spacing / res))),
                      lineType=cv2.LINE_AA, shift=SHIFT)
    if canvas is not None:
        x, y, w, h = cv2.boundingRect(canvas)
        if w:
            _multiply(img, 255 - canvas[y:y + h, x:x + w], x, y, w, h)


def _draw_marks(img: np.ndarray, scene: Scene, window, res: float) -> None:
    alpha = np.zeros(img.shape[:2], np.uint8)
    colour = np.zeros(img.shape, np.uint8)
    drawn = False
    for m in scene.marks:
        if m.z != 0 or not len(m.segs):
            continue
        if m.bbox_cache is None:
            m.bbox_cache = geo.bbox(m.segs.reshape(-1, 2))
        b = m.bbox_cache
        if not geo.boxes_overlap(b, window):
            continue
        px = m.width / res
        pts = list(cv_points(m.segs, window, res))
        th = max(1, int(round(px)))
        cv2.polylines(alpha, pts, False, int(255 * min(1.0, px)), thickness=th, lineType=cv2.LINE_AA, shift=SHIFT)
        rgb = tuple(int(255 * c) for c in MARK_COLOURS[m.colour])
        cv2.polylines(colour, pts, False, rgb, thickness=th + 2, lineType=cv2.LINE_8, shift=SHIFT)
        drawn = True
    if not drawn:
        return
    for ys, xs in _tiles_in_use(alpha):  # elsewhere alpha is 0 and the blend would keep img as it is
        a = alpha[ys, xs].astype(np.float32) * (1 / 255.0)
        sub = img[ys, xs]
        sub[...] = cv2.blendLinear(colour[ys, xs], sub, a, 1.0 - a)


_TILE = 64


def _tiles_in_use(mask: np.ndarray) -> list[tuple[slice, slice]]:
    """(rows, cols) slices of the ``_TILE``-pixel tiles of a uint8 ``mask`` holding a
    non-zero pixel. Per-pixel compositing restricted to them gives the same image as over
    the whole raster wherever the mask's zero leaves a pixel unchanged (sparse masks)."""
    x, y, w, h = cv2.boundingRect(mask)
    out = []
    for y0 in range(y, y + h, _TILE):
        rows = slice(y0, min(y0 + _TILE, y + h))
        for x0 in range(x, x + w, _TILE):
            cols = slice(x0, min(x0 + _TILE, x + w))
            if mask[rows, cols].any():
                out.append((rows, cols))
    return out


def shadow_polygons(s: Solid, cap: Capture) -> list[np.ndarray]:
    """Ground shadow of a solid as simple polygons in scene metres (union = shadow)."""
    o_base = cap.shadow_offset(s.base)
    o_top = cap.shadow_offset(s.top)
    convex = len(s.foot) == 4 or s.kind != "building"
    if convex:  # a convex solid's shadow is the hull of its shifted vertices
        pts = [s.foot + o_base, s.foot + o_top]
        if s.roof in ("gable", "hip") and s.rise > 0:
            pts.append(np.stack([(s.foot[0] + s.foot[3]) / 2, (s.foot[1] + s.foot[2]) / 2]) +
                       cap.shadow_offset(s.top + s.rise))
        elif s.roof == "shed" and s.rise > 0:
            pts.append(s.foot[2:4] + cap.shadow_offset(s.top + s.rise))
        p = np.concatenate(pts).astype(np.float32)
        return [cv2.convexHull(p)[:, 0].astype(np.float64)]
    polys = [s.foot + o_top]
    for a, b in zip(s.foot, np.roll(s.foot, -1, 0)):
        polys.append(np.stack([a + o_base, b + o_base, b + o_top, a + o_top]))
    return polys


def solid_table(scene: Scene) -> dict:
    """Per-scene arrays over ``scene.solids``: bounds (N, 4), presence (N,), and the shadow
    points (N, 10, 3) of 4-vertex solids (``is4``). Rebuilt when the scene grows."""
    tab = scene.caches.solid_table
    if tab is None or tab["version"] != scene.version:
        sol = scene.solids
        old = tab["solids"] if tab is not None else []
        m = len(old)
        if m > len(sol) or not all(map(operator.is_, sol[:m], old)):  # not just grown: start over
            old, m = [], 0
        new = sol[m:]
        is4 = np.array([len(s.foot) == 4 for s in new], bool)
        part = {"bounds": np.array([_solid_bounds(s) for s in new]).reshape(-1, 4),
                "presence": np.array([s.presence for s in new], int), "is4": is4,
                "spts": _shadow_points([s for s, k in zip(new, is4) if k])}
        if m:  # the scene grew (lazy blocks): the rows of the solids already tabulated stay
            part = {k: np.concatenate([tab[k], v]) for k, v in part.items()}
        tab = {"version": scene.version, "solids": list(sol), **part, "index4": np.flatnonzero(part["is4"])}
        scene.caches.solid_table = tab
    return tab


def _draw_shadows(img: np.ndarray, scene: Scene, cap: Capture, window, res: float) -> None:
    reach = np.hypot(*cap.shadow_offset(scene.max_height + 3)) + 5
    wide = (window[0] - reach, window[1] - reach, window[2] + reach, window[3] + reach)
    mask = np.zeros(img.shape[:2], np.uint8)
    tab = solid_table(scene)
    b = tab["bounds"]
    sel = ((tab["presence"] & cap.bit) > 0) & (b[:, 0] < wide[2]) & (b[:, 2] > wide[0]) & (b[:, 1] < wide[3]) \
        & (b[:, 3] > wide[1])
    for k in np.flatnonzero(sel & ~tab["is4"]):
        for poly in shadow_polygons(scene.solids[k], cap):
            cv2.fillPoly(mask, [cv_points(poly, window, res)], 255, lineType=cv2.LINE_AA, shift=SHIFT)
    pts = tab["spts"][sel[tab["index4"]]]
    if len(pts):
        xy = pts[..., :2] + pts[..., 2:3] * cap.shadow_offset(1.0)
        for p in cv_points(xy, window, res):
            cv2.fillConvexPoly(mask, cv2.convexHull(p), 255, cv2.LINE_AA, SHIFT)
    v = cap.vehicles
    if len(v):
        v = v[(v[:, 0] > wide[0]) & (v[:, 0] < wide[2]) & (v[:, 1] > wide[1]) & (v[:, 1] < wide[3])]
        foot = vehicle_corners(v)
        off = cap.shadow_offset(1.0)[None, None] * v[:, 5, None, None]
        for p in cv_points(np.concatenate([foot, foot + off], 1), window, res):
            cv2.fillConvexPoly(mask, cv2.convexHull(p), 255, cv2.LINE_AA, SHIFT)
    trees = scene.trees
    if len(trees):
        sel = (trees[:, 5].astype(int) & cap.bit) > 0
        sel &= (trees[:, 0] > wide[0]) & (trees[:, 0] < wide[2]) & (trees[:, 1] > wide[1]) & (trees[:, 1] < wide[3])
        t = trees[sel]
        off_dir = cap.shadow_offset(1.0)
        stretch = min(2.5, 1.0 / max(0.25, np.sin(np.radians(cap.sun_elevation))))
        ang = float(np.degrees(np.arctan2(off_dir[1], off_dir[0])))
        centres = cv_points(t[:, :2] + off_dir * t[:, 3:4], window, res)
        bases = cv_points(t[:, :2], window, res)
        ax = (t[:, 2] / res * ONE * 0.95).astype(int)
        ay = (t[:, 2] / res * ONE * 0.95 * 1.15).astype(int)
        trunk = max(1, int(round(0.35 / res)))
        for c, b0, a1, a2 in zip(centres.tolist(), bases.tolist(), ax.tolist(), ay.tolist()):
            cv2.ellipse(mask, c, (int(a1 * stretch), a2), ang, 0, 360, 255, -1, cv2.LINE_AA, SHIFT)
            cv2.line(mask, b0, c, 255, trunk, cv2.LINE_AA, SHIFT)
    sigma = max(0.5, 0.2 / res)
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    x, y, w, h = cv2.boundingRect(mask)
    if w:
        m = mask[y:y + h, x:x + w]
        a = np.arange(256) / 255.0
        factor = [cv2.LUT(m, np.clip(np.round(255 * (1 - a * (1 - f))), 0, 255).astype(np.uint8))
                  for f in cap.shadow_factor]
        sub = img[y:y + h, x:x + w]
        sub[...] = cv2.multiply(sub, cv2.merge(factor), scale=1 / 255.0)


def _shadow_points(solids: list[Solid]) -> np.ndarray:
    """(N, 10, 3) points (x, y, height) whose shifted hull is the shadow of each 4-vertex solid:
    its footprint at the base and at the eaves (the raised edge 2-3 of a shed roof), plus the
    ridge ends of a gable / hip roof (else footprint vertices 0-1 at the base again)."""
    out = np.zeros((len(solids), 10, 3))
    if not solids:
        return out
    f = np.array([s.foot for s in solids])
    base, top, rise = np.array([(s.base, s.top, s.rise) for s in solids]).T
    out[:, :4, :2], out[:, :4, 2] = f, base[:, None]
    out[:, 4:8, :2], out[:, 4:8, 2] = f, top[:, None]
    out[:, 8:, :2], out[:, 8:, 2] = f[:, :2], base[:, None]
    ridge = np.array([s.roof in ("gable", "hip") and s.rise > 0 for s in solids])
    shed = np.array([s.roof == "shed" for s in solids])
    out[shed, 6:8, 2] += rise[shed, None]
    r = f[ridge]
    out[ridge, 8, :2], out[ridge, 9, :2] = (r[:, 0] + r[:, 3]) / 2, (r[:, 1] + r[:, 2]) / 2
    out[ridge, 8:, 2] = (top[ridge] + rise[ridge])[:, None]
    return out


def _solid_bounds(s: Solid) -> tuple[float, float, float, float]:
    if s.bbox_cache is None:
        s.bbox_cache = geo.bbox(s.foot)
    return s.bbox_cache
