"""Speed of the SMGeo network on this machine, as ratios measured in one run.

Measures, on the same inputs (a 1024 x 1024 reference and a 256 x 256 query, batch 1):

* ``full_pair``: SMGeo ``paper`` forward (both encodings, fusion, head);
* ``bare_swin``: timm's plain Swin-T (``forward_features``) on the same two images;
* ``new_click``: a click on a cached reference and query (prompt + fusion + head only);
* ``new_query``: a new photo on a cached reference (query encoding + decode);
* ``gmoe`` vs ``dense_mlp``: one stage-2 GMoE layer (6 experts, top-2) against the dense
  Swin MLP it replaces, on the reference's 64 x 64 x 384 token map.

Targets (issue 2): full_pair <= 1.15 x bare_swin; new_click <= 5 % of full_pair.
Timings are medians of repeated runs, interleaved so that load changes hit all alike.

    python bench/bench_model.py --repeats 5 --json bench/results/model_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import timm
import torch
from timm.layers import Mlp

from smgeo_model import build_model
from smgeo_model.moe import GridMoE


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="paper")
    parser.add_argument("--reference-size", type=int, default=1024)
    parser.add_argument("--query-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = build_model(args.config).eval()
    cfg = model.config
    bare = timm.models.swin_transformer.SwinTransformer(
        img_size=224, embed_dim=cfg.embed_dim, depths=cfg.depths, num_heads=cfg.num_heads,
        window_size=cfg.window_size, num_classes=0, strict_img_size=False,
    ).eval()
    reference = torch.rand(1, 3, args.reference_size, args.reference_size)
    query = torch.rand(1, 3, args.query_size, args.query_size)
    click = torch.tensor([[args.query_size / 2, args.query_size / 2]])
    other_click = torch.tensor([[args.query_size / 4, args.query_size / 3]])
    dim = cfg.stage_dims()[2]
    side = args.reference_size // 16
    tokens = torch.randn(1, side, side, dim)
    moe = GridMoE(dim, int(dim * cfg.mlp_ratio * cfg.moe_expert_ratio), cfg.moe_num_experts, cfg.moe_top_k, cfg.moe_grid).eval()
    dense = Mlp(dim, int(dim * cfg.mlp_ratio)).eval()

    with torch.inference_mode():
        ref_emb = model.encode_reference(reference)
        query_emb = model.encode_query(query)
        cases = {
            "full_pair": lambda: model(query, click, reference),
            "bare_swin": lambda: (bare.forward_features(reference), bare.forward_features(query)),
            "new_click": lambda: model.decode(ref_emb, query_emb, other_click),
            "new_query": lambda: model.decode(ref_emb, model.encode_query(query), click),
            "gmoe": lambda: moe(tokens, "reference"),
            "dense_mlp": lambda: dense(tokens.view(1, -1, dim)),
        }
        for fn in cases.values():  # warm-up
            fn()
        samples: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeats):
            for name, fn in cases.items():
                samples[name].append(timed(fn))
    t = {k: statistics.median(v) for k, v in samples.items()}
    ratios = {
        "full_pair / bare_swin": t["full_pair"] / t["bare_swin"],
        "new_click / full_pair": t["new_click"] / t["full_pair"],
        "new_query / full_pair": t["new_query"] / t["full_pair"],
        "gmoe / dense_mlp": t["gmoe"] / t["dense_mlp"],
    }
    targets = {"full_pair / bare_swin": 1.15, "new_click / full_pair": 0.05}
    print(f"SMGeo '{args.config}', reference {args.reference_size}^2, query {args.query_size}^2, "
          f"{args.threads} threads, median of {args.repeats}")
    for name, seconds in t.items():
        print(f"  {name:12s} {seconds * 1000:10.1f} ms")
    for name, value in ratios.items():
        target = targets.get(name)
        verdict = "" if target is None else (f"  (target <= {target:g}: {'met' if value <= target else 'MISSED'})")
        print(f"  {name:24s} {value:7.3f}{verdict}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "config": args.config, "reference_size": args.reference_size, "query_size": args.query_size,
            "threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
            "machine": platform.machine(), "processor": platform.processor(),
            "seconds": t, "ratios": ratios, "targets": targets,
        }, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
