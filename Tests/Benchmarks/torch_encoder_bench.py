#!/usr/bin/env python3
"""PyTorch side of the encoder benchmark: timm's VisionTransformer built with a preset's switches
(Tests/Data/encoders/presets/<name>.json, as TRIDENT builds the published models), random weights,
timed the way TRIDENT extracts features (inference mode, bf16 autocast or fp32) next to
`wsi bench embed --encoder <name>` run in the same command, round after round, so each ratio
compares runs made minutes apart.

Usage: python torch_encoder_bench.py WSI_BINARY [--encoders kaiko-vits16 uni_v1] [--batch 16]
       [--steps 5] [--rounds 3] [--precisions fp32 bf16]
Needs torch and timm (pip install torch timm into a virtual environment outside the repository).
"""
import argparse
import json
import os
import statistics
import subprocess
from functools import partial

import timm
import torch
from timm.layers import SwiGLUPacked

from timing import timed

PRESETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Data", "encoders", "presets")


def build(name):
    features, side, _ = build_from_config(os.path.join(PRESETS, name + ".json"))
    return features, side


def build_from_config(path):
    """timm's model for a config in the fixtures' schema, its features function and input side."""
    with open(path) as f:
        c = json.load(f)
    kwargs = dict(img_size=c["img_size"], patch_size=c["patch_size"], embed_dim=c["embed_dim"], depth=c["depth"],
                  num_heads=c["num_heads"], mlp_ratio=c["mlp_ratio"], init_values=c["init_values"], reg_tokens=c["reg_tokens"],
                  no_embed_class=c["no_embed_class"], dynamic_img_size=True, num_classes=0,
                  norm_layer=partial(torch.nn.LayerNorm, eps=c["norm_eps"]),
                  global_pool="token" if c["pool"] == "token" else ("avg" if c["pool"] == "avg" else ""))
    if c["mlp_layer"] == "swiglu_packed":
        kwargs.update(mlp_layer=SwiGLUPacked, act_layer=torch.nn.SiLU)
    model = timm.models.vision_transformer.VisionTransformer(**kwargs).eval()
    side = c["transform"].get("center_crop") or c["transform"]["resize"]
    pool = c["pool"]

    def features(x):
        if pool != "token+mean":
            return model(x)
        tokens = model.forward_features(x)
        return torch.cat([tokens[:, 0], tokens[:, model.num_prefix_tokens:].mean(1)], dim=-1)
    return features, side, model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("wsi")
    parser.add_argument("--encoders", nargs="+", default=["kaiko-vits16", "uni_v1"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    args = parser.parse_args()
    flags = sorted({f for line in open("/proc/cpuinfo") if line.startswith("flags") for f in line.split()[2:]
                    if f.startswith("avx512") or f in ("avx2", "fma", "amx_bf16")})
    print(f"torch {torch.__version__}, timm {timm.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.rounds} rounds; CPU flags: {' '.join(flags)}")
    torch.manual_seed(0)
    rates = {}
    for name in args.encoders:
        features, side = build(name)
        images = torch.randn(args.batch, 3, side, side)
        for round in range(args.rounds):
            for precision in args.precisions:
                def step():
                    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                        features(images)
                torch_rate = timed(step, args.batch, args.steps)
                out = subprocess.run([args.wsi, "bench", "embed", "--encoder", name, "--batch", str(args.batch), "--steps", str(args.steps),
                                      "--precision", precision], capture_output=True, text=True, check=True).stdout
                wsi_rate = float(out.split("median ")[1].split(" img/s")[0])
                rates.setdefault((name, precision), []).append((torch_rate, wsi_rate))
                print(f"round {round + 1}: {name} {precision}: pytorch {torch_rate:.2f}, wsi {wsi_rate:.2f} img/s", flush=True)
        del features
    print("medians over rounds (img/s):")
    for (name, precision), pairs in rates.items():
        ratio = statistics.median(p[1] / p[0] for p in pairs)
        print(f"  {name} {precision}: pytorch {statistics.median(p[0] for p in pairs):.2f}, "
              f"wsi {statistics.median(p[1] for p in pairs):.2f}, ratio {ratio:.2f} (median of per-round ratios)")


if __name__ == "__main__":
    main()
