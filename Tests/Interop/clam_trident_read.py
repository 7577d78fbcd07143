"""Reads a tiling's coords.h5 (or export-clam's patches/<slide>.h5) the way CLAM and TRIDENT do.

CLAM's Whole_Slide_Bag_FP takes `patch_level` and `patch_size` from the `coords` attributes and
reads `patch_size` pixels at `patch_level` for each coordinate; TRIDENT's read_coords takes the
attributes its coords_to_h5 writes and reads `patch_size_level0` pixels of level 0 scaled to
`patch_size`. This script does both with h5py and openslide-python and compares each tile with
the one wsi stored (tiles/<slide>/patches/*.png), so the three agree on what a tile is.

Usage: python clam_trident_read.py COORDS.h5 SLIDE [PATCH_FOLDER]
Needs: h5py, openslide-python, numpy, pillow (not needed by the Swift suite).
"""
import sys

import h5py
import numpy as np
import openslide
from PIL import Image

CLAM = {"patch_size": np.integer, "patch_level": np.integer, "downsample": np.ndarray, "level_dim": np.ndarray,
        "downsampled_level_dim": np.ndarray, "name": str, "save_path": str}
TRIDENT = {"patch_size": np.integer, "patch_size_level0": np.integer, "level0_magnification": np.integer,
           "target_magnification": np.integer, "overlap": np.integer, "name": str, "savetodir": str,
           "level0_width": np.integer, "level0_height": np.integer}


def check_types(attrs, expected, who):
    for key, kind in expected.items():
        assert key in attrs, f"{who}: attribute {key} missing"
        value = attrs[key]
        if isinstance(value, bytes):
            value = value.decode()
        assert isinstance(value, kind), f"{who}: {key} is {type(value).__name__}, expected {kind.__name__}"
        if kind is np.ndarray:
            assert value.shape == (2,), f"{who}: {key} has shape {value.shape}, expected (2,)"


def main(coords_path, slide_path, patch_folder=None):
    with h5py.File(coords_path, "r") as f:
        coords = f["coords"][:]
        attrs = dict(f["coords"].attrs)
    check_types(attrs, CLAM, "CLAM")
    check_types(attrs, TRIDENT, "TRIDENT")
    tile = attrs["patch_size_level0"] * attrs["target_magnification"] / attrs["level0_magnification"]
    assert abs(tile - attrs["patch_size"]) <= 0.05 * attrs["patch_size"], f"TRIDENT's magnifications give {tile}, not patch_size"
    wsi = openslide.OpenSlide(slide_path)
    size, level, level0 = int(attrs["patch_size"]), int(attrs["patch_level"]), int(attrs["patch_size_level0"])
    worst_clam = worst_trident = 0.0
    for index, (x, y) in enumerate(coords[:8]):
        clam = np.asarray(wsi.read_region((int(x), int(y)), level, (size, size)).convert("RGB"), dtype=np.float32)
        trident = np.asarray(wsi.read_region((int(x), int(y)), 0, (level0, level0)).convert("RGB").resize((size, size), Image.BILINEAR),
                             dtype=np.float32)
        if patch_folder:
            ours = np.asarray(Image.open(f"{patch_folder}/{int(x)}_{int(y)}.png").convert("RGB"), dtype=np.float32)
            # Both resize what they read to the encoder's input themselves: compare at our tile size.
            clam, trident = (np.asarray(Image.fromarray(t.astype(np.uint8)).resize(ours.shape[1::-1], Image.BILINEAR), dtype=np.float32)
                             if t.shape != ours.shape else t for t in (clam, trident))
            worst_clam = max(worst_clam, float(np.abs(clam - ours).mean()))
            worst_trident = max(worst_trident, float(np.abs(trident - ours).mean()))
    print(f"{coords_path}: {len(coords)} tiles; CLAM and TRIDENT attributes present with their types")
    if patch_folder:
        print(f"mean |difference| to wsi's tiles over 8 tiles, worst: CLAM's read {worst_clam:.2f}, TRIDENT's read {worst_trident:.2f} (of 255)")


if __name__ == "__main__":
    main(*sys.argv[1:])
