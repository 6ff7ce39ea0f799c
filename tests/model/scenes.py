"""Small seeded image pairs for model tests (torchgeo style: made by code, not stored).

A reference "satellite" image with two distinct objects on a textured ground, and a
"drone" query that sees both objects from another scale and offset. Clicking one or the
other object in the query must send the answer to that object's box in the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def textured_ground(size: int, generator: torch.Generator) -> torch.Tensor:
    """``[3, size, size]`` smooth random texture in [0.3, 0.6]."""
    coarse = torch.rand(3, size // 16, size // 16, generator=generator)
    img = F.interpolate(coarse[None], size=(size, size), mode="bilinear", align_corners=False)[0]
    return 0.3 + 0.3 * img


def two_object_pair(reference_size: int = 256, query_size: int = 128, seed: int = 0):
    """Returns reference ``[3,R,R]``, query ``[3,Q,Q]``, clicks ``[2,2]`` (x, y query px) and
    boxes ``[2,4]`` (xyxy reference px): object 0 is a red square, object 1 a blue one."""
    g = torch.Generator().manual_seed(seed)
    R, Q = reference_size, query_size
    ref = textured_ground(R, g)
    boxes = torch.tensor([[0.16, 0.20, 0.36, 0.40], [0.58, 0.56, 0.82, 0.80]]) * R
    colours = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.2, 0.9]])
    for (x1, y1, x2, y2), colour in zip(boxes.round().long().tolist(), colours):
        ref[:, y1:y2, x1:x2] = colour[:, None, None]
    # the drone sees the central 80% of the scene, rescaled and colour-shifted
    crop = int(R * 0.1), int(R * 0.9)
    query = ref[:, crop[0]: crop[1], crop[0]: crop[1]]
    query = F.interpolate(query[None], size=(Q, Q), mode="bilinear", align_corners=False, antialias=True)[0]
    query = (query * 0.9 + 0.05).clamp(0, 1)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    clicks = (centres - crop[0]) * (Q / (crop[1] - crop[0]))
    return ref, query, clicks, boxes
