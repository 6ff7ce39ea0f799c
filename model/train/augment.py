"""Box-safe augmentation of a (query, click, reference, box) sample.

Operates on samples as the CVOGL reader yields them: ``query`` ``[3,h,w]`` and
``reference`` ``[3,H,W]`` float RGB in [0,1], ``click`` ``[2]`` (x, y query px), ``box``
``[4]`` (x1, y1, x2, y2 reference px). Every random draw comes from a generator seeded by
(seed, epoch, sample index), so augmentation is reproducible whatever the worker layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class PairAugment:
    """Random scale + box-safe crop of the reference, joint flips, photometric jitter.

    * scale: the reference is zoomed by s in ``scale_range`` and cropped (or padded) back
      to its size with a window that keeps the whole box inside when it fits;
    * flips: horizontal/vertical flips are applied to query and reference together (a
      mirrored world keeps the cross-view geometry consistent), with click and box;
    * a sample's ``points`` (``[K, 4]``: x, y query px, col, row reference px) follow the
      reference's zoom, crop and the flips; rows whose reference pixel leaves the crop become NaN;
    * jitter: brightness/contrast/saturation of each view independently.
    """

    def __init__(self, seed: int = 0, scale_range: tuple[float, float] = (0.8, 1.25), flip_p: float = 0.5,
                 jitter: float = 0.15) -> None:
        self.seed, self.scale_range, self.flip_p, self.jitter = seed, scale_range, flip_p, jitter
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, sample: dict) -> dict:
        g = torch.Generator().manual_seed(hash((self.seed, self.epoch, int(sample["index"]))) % 2**63)
        s = dict(sample)
        s["reference"], s["box"], zoom = self._scale_crop(s["reference"], s["box"], g)
        points = s.get("points")
        if points is not None:  # (x, y) query px, (col, row) reference px: the reference's zoom and crop
            points = points.clone()
            points[:, 2:] = points[:, 2:] * zoom[:2] - zoom[2:]
            H, W = s["reference"].shape[-2:]
            outside = (points[:, 2] < 0) | (points[:, 2] > W) | (points[:, 3] < 0) | (points[:, 3] > H)
            points[outside] = float("nan")
        if torch.rand((), generator=g) < self.flip_p:  # horizontal, both views
            s["query"], s["reference"] = s["query"].flip(-1), s["reference"].flip(-1)
            w, W = s["query"].shape[-1], s["reference"].shape[-1]
            s["click"] = torch.stack([w - s["click"][0], s["click"][1]])
            s["box"] = torch.stack([W - s["box"][2], s["box"][1], W - s["box"][0], s["box"][3]])
            if points is not None:
                points[:, 0], points[:, 2] = w - points[:, 0], W - points[:, 2]
        if torch.rand((), generator=g) < self.flip_p:  # vertical, both views
            s["query"], s["reference"] = s["query"].flip(-2), s["reference"].flip(-2)
            h, H = s["query"].shape[-2], s["reference"].shape[-2]
            s["click"] = torch.stack([s["click"][0], h - s["click"][1]])
            s["box"] = torch.stack([s["box"][0], H - s["box"][3], s["box"][2], H - s["box"][1]])
            if points is not None:
                points[:, 1], points[:, 3] = h - points[:, 1], H - points[:, 3]
        if points is not None:
            s["points"] = points
        s["query"] = self._jitter(s["query"], g)
        s["reference"] = self._jitter(s["reference"], g)
        return s

    def _scale_crop(self, image: torch.Tensor, box: torch.Tensor, g: torch.Generator):
        _, H, W = image.shape
        lo, hi = self.scale_range
        scale = float(lo + (hi - lo) * torch.rand((), generator=g))
        sh, sw = max(1, round(H * scale)), max(1, round(W * scale))
        zoomed = F.interpolate(image[None], size=(sh, sw), mode="bilinear", align_corners=False, antialias=scale < 1)[0]
        b = box * torch.tensor([sw / W, sh / H, sw / W, sh / H])
        # crop origin (x0, y0) in zoomed pixels; negative = padding. Keep the box inside if it fits.
        x0 = self._origin(sw, W, float(b[0]), float(b[2]), g)
        y0 = self._origin(sh, H, float(b[1]), float(b[3]), g)
        canvas = image.new_zeros(3, H, W)
        src_x, src_y = max(x0, 0), max(y0, 0)
        dst_x, dst_y = max(-x0, 0), max(-y0, 0)
        cw, ch = min(sw - src_x, W - dst_x), min(sh - src_y, H - dst_y)
        canvas[:, dst_y: dst_y + ch, dst_x: dst_x + cw] = zoomed[:, src_y: src_y + ch, src_x: src_x + cw]
        out = b - torch.tensor([x0, y0, x0, y0], dtype=b.dtype)
        out[0::2] = out[0::2].clamp(0, W)
        out[1::2] = out[1::2].clamp(0, H)
        zoom = torch.tensor([sw / W, sh / H, x0, y0], dtype=box.dtype)  # reference px -> (px * zoom[:2] - zoom[2:])
        return canvas, out, zoom

    @staticmethod
    def _origin(zoomed: int, size: int, a: float, b: float, g: torch.Generator) -> int:
        lo, hi = min(0, zoomed - size), max(0, zoomed - size)  # valid window origins
        if b - a <= size:  # box fits: origin in [b - size, a]
            lo, hi = max(lo, int(b - size) + 1), min(hi, int(a))
            if lo > hi:
                lo = hi = int(min(max((a + b - size) / 2, min(0, zoomed - size)), max(0, zoomed - size)))
        return int(lo + torch.randint(0, hi - lo + 1, (), generator=g)) if hi > lo else lo

    def _jitter(self, image: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if self.jitter <= 0:
            return image
        j = lambda: 1 + self.jitter * (2 * float(torch.rand((), generator=g)) - 1)  # noqa: E731
        b, c, s = j(), j(), j()
        mean = image.mean()
        grey = image.mean(0, keepdim=True)
        out = (image - mean) * c + mean * b
        out = grey + (out - grey) * s
        return out.clamp(0, 1)
