#!/usr/bin/env python3
"""Groups a labelled folder's pictures into near-duplicate families, for `wsi evaluate --groups`.

LC25000 made every class from 250 fields of view, each rotated (up to 25 degrees, cropped and
zoomed back to full size) and flipped into about 20 copies, and ships no original-image ids: a
per-file split puts copies of one field in train and test. This script finds the families again.
Two pictures of one class are linked when one, turned by some angle (5-degree steps), mirrored
or not and zoomed by the crop that rotation implies, matches the other's centre: the normalised
cross-correlation of blurred 32 x 32 grey centres, maximised over 576 such transforms, exceeds
--threshold. Linked pictures form one group (connected components), so a wrong link can only
make groups larger and the evaluation stricter, never leak.

    near_duplicate_groups.py LABELLED_DIR OUT.csv [--threshold 0.8] [--histogram]

Needs numpy and Pillow. --histogram prints the distribution of every picture's best match, which
is how the threshold was chosen (copies sit near 1, distinct fields well below).
"""
import argparse
import pathlib
import sys

import numpy as np
from PIL import Image, ImageFilter

SIDE = 64       # pictures are compared at this resolution
CENTRE = 32     # side of the compared centre, in SIDE pixels
ANGLES = np.deg2rad(np.arange(0, 360, 5))
ZOOMS = (0.75, 0.85, 1.0, 1.18)  # the crop-and-zoom of a 0-25 degree rotation spans ~1.33x


def load(path):
    with Image.open(path) as picture:
        grey = picture.convert("L").resize((SIDE, SIDE), Image.BILINEAR).filter(ImageFilter.GaussianBlur(1))
    return np.asarray(grey, dtype=np.float32)


def normalise(vectors):
    vectors = vectors - vectors.mean(axis=-1, keepdims=True)
    return vectors / (np.linalg.norm(vectors, axis=-1, keepdims=True) + 1e-6)


def sampling_grid():
    """Source coordinates, per transform, of the compared centre's pixels."""
    offsets = (np.arange(CENTRE) - (CENTRE - 1) / 2)
    y, x = np.meshgrid(offsets, offsets, indexing="ij")
    grids = []
    for mirror in (1, -1):
        for angle in ANGLES:
            for zoom in ZOOMS:
                c, s = np.cos(angle) / zoom, np.sin(angle) / zoom
                u = mirror * (c * x - s * y) + (SIDE - 1) / 2
                v = (s * x + c * y) + (SIDE - 1) / 2
                grids.append((v.ravel(), u.ravel()))
    rows, cols = zip(*grids)
    return np.stack(rows), np.stack(cols)


def bilinear(image, rows, cols):
    rows = np.clip(rows, 0, SIDE - 1.001)
    cols = np.clip(cols, 0, SIDE - 1.001)
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = rows - r0, cols - c0
    return ((1 - fr) * (1 - fc) * image[r0, c0] + (1 - fr) * fc * image[r0, c0 + 1]
            + fr * (1 - fc) * image[r0 + 1, c0] + fr * fc * image[r0 + 1, c0 + 1])


def best_matches(images, grids):
    """best[i, j]: the highest correlation of a transform of picture i with picture j's centre."""
    lo = (SIDE - CENTRE) // 2
    centres = normalise(images[:, lo:lo + CENTRE, lo:lo + CENTRE].reshape(len(images), -1))
    best = np.full((len(images), len(images)), -1.0, dtype=np.float32)
    for i, image in enumerate(images):
        variants = normalise(bilinear(image, *grids))
        best[i] = (variants @ centres.T).max(axis=0)
    best = np.maximum(best, best.T)
    np.fill_diagonal(best, -1.0)
    return best


def components(linked):
    parent = list(range(len(linked)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(linked, 1))):
        parent[root(i)] = root(j)
    return [root(i) for i in range(len(linked))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labelled")
    parser.add_argument("out")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--histogram", action="store_true")
    arguments = parser.parse_args()
    root = pathlib.Path(arguments.labelled)
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    if not classes:
        sys.exit(f"{root}: no class folders")
    grids = sampling_grid()
    rows = ["file,group"]
    summary = []
    for folder in classes:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"))
        images = np.stack([load(p) for p in files])
        best = best_matches(images, grids)
        if arguments.histogram:
            counts, edges = np.histogram(best.max(axis=1), bins=20, range=(0, 1))
            print(f"{folder.name}: best match per picture")
            for count, edge in zip(counts, edges):
                print(f"  {edge:.2f}-{edge + 0.05:.2f} {'#' * int(count // 4)} {count}")
        roots = components(best > arguments.threshold)
        for path, group in zip(files, roots):
            rows.append(f"{folder.name}/{path.name},{folder.name}-{group}")
        sizes = np.bincount(np.unique(roots, return_inverse=True)[1])
        summary.append(f"{folder.name}: {len(files)} pictures in {len(sizes)} groups (largest {sizes.max()})")
    pathlib.Path(arguments.out).write_text("\n".join(rows) + "\n")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
