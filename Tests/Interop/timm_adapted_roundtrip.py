#!/usr/bin/env python3
"""Adapts a fixture encoder with `wsi pretrain --init-encoder`, then loads the adapted
encoder.safetensors into timm's VisionTransformer with strict=True (as TRIDENT loads a published
model) and checks that timm and `wsi embed` give the same features for the fixture's images, and
that the adaptation moved the weights.

Usage: python timm_adapted_roundtrip.py WSI_BINARY [--fixture uni-like] [--epochs 2]
Needs torch, timm and safetensors (pip install torch timm into a virtual environment outside the
repository). The fixtures with timm names: uni-like, uni2h-like, hoptimus-like, kaiko-l14-like.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Benchmarks"))
from torch_encoder_bench import build_from_config  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Data")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("wsi")
    parser.add_argument("--fixture", default="uni-like")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    fixture = os.path.join(DATA, "encoders", args.fixture)
    work = tempfile.mkdtemp(prefix="wsi-adapt-")
    run = lambda *a: subprocess.run([args.wsi, *a], check=True, capture_output=True, text=True)  # noqa: E731
    run("tile", os.path.join(DATA, "cmu1-small-region-svs", "CMU-1-Small-Region.svs"), "--level", "0", "--size", "224",
        "--tissue-threshold", "0.5", "--format", "png", "--out", work, "--quiet")
    run("pretrain", "--patches", os.path.join(work, "tile"), "--init-encoder", os.path.join(fixture, "config.json"),
        "--weights", os.path.join(fixture, "model.safetensors"), "--epochs", str(args.epochs), "--batch", "4",
        "--prototypes", "64", "--out", work, "--quiet")
    adapted = os.path.join(work, "pretrain", "encoder.safetensors")
    config = os.path.join(work, "pretrain", "encoder.json")

    features, side, model = build_from_config(config)
    state = load_file(adapted)
    model.load_state_dict(state, strict=True)  # raises on any missing or unexpected tensor
    published = load_file(os.path.join(fixture, "model.safetensors"))
    moved = max((state[k] - published[k]).abs().max().item() for k in state)

    pixels = load_file(os.path.join(fixture, "expected.safetensors"))["pixels"]  # the transform's output, which wsi reproduces
    with torch.no_grad():
        timm_features = features(pixels)
    out = os.path.join(work, "features.safetensors")
    run("embed", "--encoder", config, "--weights", adapted, "--data", os.path.join(DATA, "encoders", "images"), "--out", out,
        "--precision", "fp32", "--quiet")
    wsi_features = load_file(out)["features"]
    difference = (wsi_features - timm_features).abs().max().item()
    print(f"{args.fixture}: timm loaded {len(state)} tensors with strict=True; largest weight change from the published "
          f"{moved:.3g}; features [{tuple(wsi_features.shape)}] wsi vs timm max |difference| {difference:.2e}")
    if difference > 1e-4 or moved == 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
