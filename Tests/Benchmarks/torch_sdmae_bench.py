#!/usr/bin/env python3
"""PyTorch side of the precision benchmark: the same SD-MAE model as `wsi` (the spec in
Tests/Data/sdmae-tiny/SPEC-sdmae.md), timed in fp32 and with bf16 autocast on the CPU, printed next
to `wsi bench` run in the same command so the ratios are measured side by side.

With --encoder NAME (a preset of Tests/Data/encoders/presets, e.g. kaiko-vits16, kaiko-vitb16) the
encoder is timm's VisionTransformer of that preset, random weights, with its class and register
tokens never masked, and the decoder and heads sized as `pretrain --init-encoder` sizes them:
the step a lab runs to adapt a published encoder (training only).

Usage: python torch_sdmae_bench.py WSI_BINARY [--preset tiny | --encoder kaiko-vits16] [--batch 64] [--steps 8] [--rounds 3]
Needs torch (pip install torch into a virtual environment outside the repository), and timm for --encoder.
"""
import argparse
import os
import sys
import statistics
import subprocess

import torch
import torch.nn as nn
import torch.nn.functional as F

from timing import timed

PRESETS = {  # img, patch, dim, depth, heads, ddim, ddepth, dheads, hidden, bottleneck, k
    "tiny": (224, 16, 192, 12, 3, 128, 4, 4, 512, 128, 1024),
    "tiny96": (96, 8, 192, 6, 3, 128, 2, 4, 512, 128, 1024),
    "small": (224, 16, 384, 12, 6, 192, 4, 3, 2048, 256, 4096),
}


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.heads = heads

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + self.proj(a)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Head(nn.Module):
    def __init__(self, din, hidden, bottleneck, k):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(din, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, bottleneck))
        self.v = nn.Parameter(torch.randn(k, bottleneck) * 0.02)

    def forward(self, x):
        return F.normalize(self.mlp(x), dim=-1) @ F.normalize(self.v, dim=-1).t()


class SDMAE(nn.Module):
    def __init__(self, img, patch, d, depth, heads, dd, ddepth, dheads, hidden, bottleneck, k):
        super().__init__()
        self.patch, self.tokens = patch, (img // patch) ** 2
        self.embed = nn.Linear(3 * patch * patch, d)
        self.pos = nn.Parameter(torch.zeros(1, self.tokens, d), requires_grad=False)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.dembed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.dpos = nn.Parameter(torch.zeros(1, self.tokens, dd), requires_grad=False)
        self.dblocks = nn.ModuleList(Block(dd, dheads) for _ in range(ddepth))
        self.dnorm = nn.LayerNorm(dd, eps=1e-6)
        self.pred = nn.Linear(dd, 3 * patch * patch)
        self.student, self.teacher = Head(d, hidden, bottleneck, k), Head(dd, hidden, bottleneck, k)
        self.register_buffer("center", torch.zeros(1, k))

    def patchify(self, x):
        b, p = x.shape[0], self.patch
        g = x.shape[-1] // p
        return x.reshape(b, 3, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(b, g * g, p * p * 3)

    def encode(self, patches, visible):
        x = self.embed(patches) + self.pos
        x = torch.gather(x, 1, visible[..., None].expand(-1, -1, x.shape[-1]))
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def decode(self, latent, visible, masked):
        b, nv = visible.shape
        y = self.dembed(latent) + torch.gather(self.dpos.expand(b, -1, -1), 1, visible[..., None].expand(-1, -1, self.dpos.shape[-1]))
        m = self.mask_token + torch.gather(self.dpos.expand(b, -1, -1), 1, masked[..., None].expand(-1, -1, self.dpos.shape[-1]))
        y = torch.cat([y, m], 1)
        for block in self.dblocks:
            y = block(y)
        return self.dnorm(y)

    def loss(self, images, ratio=0.75, p=0.2):
        b = images.shape[0]
        order = torch.rand(b, self.tokens).argsort(1)
        nm = int(ratio * self.tokens)
        visible, masked = order[:, nm:], order[:, :nm]
        patches = self.patchify(images)
        latent = self.encode(patches, visible)
        dec = self.decode(latent, visible, masked)
        pred = self.pred(dec[:, visible.shape[1]:])
        target = torch.gather(patches, 1, masked[..., None].expand(-1, -1, patches.shape[-1]))
        t = target.reshape(b, nm, -1, 3)
        t = (t - t.mean(2, keepdim=True)) / (t.std(2, keepdim=True) + 1e-6)
        rec = ((pred.float() - t.reshape(b, nm, -1)) ** 2).mean()
        zs = self.student(latent).mean(1)
        zt = self.teacher(dec[:, :visible.shape[1]]).mean(1)
        P = F.softmax((zt.float() - self.center) / 0.04, -1)
        sd = -(P * F.log_softmax(zs.float() / 0.1, -1)).sum(-1).mean()
        return (1 - p) * rec + p * sd, P

    def features(self, images):
        patches = self.patchify(images)
        every = torch.arange(self.tokens).expand(images.shape[0], -1)
        return self.encode(patches, every).mean(1)


class AdaptedSDMAE(SDMAE):
    """SD-MAE around a timm ViT: its patch embedding (as a Linear on flattened patches, the same
    products as its convolution), positions, prefix tokens, blocks and norm."""

    def __init__(self, vit, img, patch, *sizes):
        d, heads = vit.embed_dim, vit.blocks[0].attn.num_heads
        super().__init__(img, patch, d, 0, heads, *sizes)
        self.vit = vit

    def encode(self, patches, visible):
        vit, b = self.vit, patches.shape[0]
        prefix = vit.num_prefix_tokens
        x = self.embed(patches) + vit.pos_embed[:, -self.tokens:]
        x = torch.gather(x, 1, visible[..., None].expand(-1, -1, x.shape[-1]))
        tokens = [vit.cls_token.expand(b, -1, -1)] + ([vit.reg_token.expand(b, -1, -1)] if vit.reg_token is not None else [])
        x = torch.cat(tokens + [x], 1)
        for block in vit.blocks:
            x = block(x)
        return vit.norm(x)[:, prefix:]


def adapted(name):
    """The model `pretrain --init-encoder NAME` trains: decoder half the encoder's width (a multiple
    of 64), four blocks, 64-wide heads; heads of the `small` preset with 1024 prototypes."""
    _, side, vit = build_with_model(name)
    patch = vit.patch_embed.patch_size[0]
    half = vit.embed_dim // 2
    dd = half - half % 64 if half >= 64 else max(4, half - half % 4)
    return AdaptedSDMAE(vit.train(), side, patch, dd, 4, max(1, dd // 64), 2048, 256, 1024), side


def build_with_model(name):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_encoder_bench import PRESETS as folder, build_from_config  # noqa: E402
    return build_from_config(os.path.join(folder, name + ".json"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("wsi")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--encoder")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.encoder:
        model, side = adapted(args.encoder)
    else:
        model, side = SDMAE(*PRESETS[args.preset]), PRESETS[args.preset][0]
    images = torch.rand(args.batch, 3, side, side)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train(bf16):
        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss, P = model.loss(images)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                model.center.mul_(0.9).add_(0.1 * P.mean(0, keepdim=True))
        return step

    def infer(bf16):
        def step():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model.features(images)
        return step

    def wsi(what, precision):
        model_args = ["--encoder", args.encoder] if args.encoder else ["--preset", args.preset]
        out = subprocess.run([args.wsi, "bench", what, *model_args, "--batch", str(args.batch), "--steps", str(args.steps),
                              "--precision", precision], capture_output=True, text=True, check=True)
        return float(out.stdout.split("median ")[1].split(" img/s")[0])

    # The machine's speed drifts over minutes (shared host): every round times all eight
    # configurations back to back, and the report takes medians over rounds, so each ratio
    # compares runs made minutes, not a quarter of an hour, apart.
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.encoder or 'preset ' + args.preset}, batch {args.batch}, "
          f"{args.rounds} rounds")
    rates = {}
    for round in range(args.rounds):
        for what in ("train",) if args.encoder else ("embed", "train"):
            for precision in ("fp32", "bf16"):
                torch_rate = timed((infer if what == "embed" else train)(precision == "bf16"), args.batch, args.steps)
                wsi_rate = wsi(what, precision)
                rates.setdefault((what, precision), []).append((torch_rate, wsi_rate))
                print(f"round {round + 1}: {what} {precision}: pytorch {torch_rate:.1f}, wsi {wsi_rate:.1f} img/s", flush=True)
    print("medians over rounds (img/s):")
    for (what, precision), pairs in rates.items():
        torch_rate = statistics.median(p[0] for p in pairs)
        wsi_rate = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[1] / p[0] for p in pairs)
        print(f"  {what} {precision}: pytorch {torch_rate:.1f}, wsi {wsi_rate:.1f}, ratio {ratio:.2f} (median of per-round ratios)")


if __name__ == "__main__":
    main()
