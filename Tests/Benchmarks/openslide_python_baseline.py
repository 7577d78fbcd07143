#!/usr/bin/env python3
"""The baseline `wsi bench tile` is compared with: the usual openslide-python loop.

For every tile of a level-0 grid: read_region, convert to RGB, and keep the tile when enough of
its pixels are saturated (tissue). Prints median seconds per slide over --runs runs.
Needs Debian's python3-openslide and python3-numpy:  /usr/bin/python3 openslide_python_baseline.py SLIDE...
"""
import argparse
import statistics
import time

import numpy as np
import openslide


def tile_slide(path, size, tissue_threshold):
    slide = openslide.OpenSlide(path)
    width, height = slide.dimensions
    kept = 0
    for y in range(0, height - size + 1, size):
        for x in range(0, width - size + 1, size):
            tile = np.asarray(slide.read_region((x, y), 0, (size, size)).convert("RGB"), dtype=np.int16)
            hi, lo = tile.max(axis=2), tile.min(axis=2)
            saturation = np.where(hi > 0, (hi - lo) * 255 // np.maximum(hi, 1), 0)
            if (saturation > 20).mean() >= tissue_threshold:
                kept += 1
    slide.close()
    return kept


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("slides", nargs="+")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tissue-threshold", type=float, default=0.5)
    args = parser.parse_args()
    for path in args.slides:
        seconds = []
        for _ in range(args.runs):
            start = time.perf_counter()
            kept = tile_slide(path, args.size, args.tissue_threshold)
            seconds.append(time.perf_counter() - start)
        print(f"{path.split('/')[-1]:34s} kept {kept:4d}  median {statistics.median(seconds):.3f} s  "
              f"(min {min(seconds):.3f}, max {max(seconds):.3f})")


if __name__ == "__main__":
    main()
