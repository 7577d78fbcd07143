#!/usr/bin/env python3
"""Feature bags and MIL outputs read and written by h5py, as CLAM and TRIDENT users would.

Usage: python mil_h5py_roundtrip.py WSI_BINARY RUN_DIR SCRATCH_DIR
  RUN_DIR: an output folder of pipelines/mil.yaml (features/ and predict-mil/ inside).
Checks that wsi's features.h5 open in h5py with CLAM's layout, then writes TRIDENT-style bags
(1024-wide float32 features, int32 and int64 coords) with h5py, trains and predicts on them with
wsi, and reads the results back. Needs h5py and numpy (pip install h5py into a venv).
"""
import os
import subprocess
import sys

import h5py
import numpy as np

wsi, run, scratch = sys.argv[1:4]

for slide in sorted(os.listdir(os.path.join(run, "features"))):
    with h5py.File(os.path.join(run, "features", slide, "features.h5"), "r") as f:
        features, coords = f["features"], f["coords"]
        assert features.dtype == np.float32 and features.ndim == 2, features
        assert coords.dtype == np.int64 and coords.shape == (features.shape[0], 2), coords
        assert f["features"].attrs["name"].decode() == slide
        assert "patch_size" in coords.attrs and "patch_level" in coords.attrs
        print(f"{slide}: features {features.shape} float32, coords int64, attrs {sorted(coords.attrs)}")

bags = os.path.join(scratch, "features_uni")
os.makedirs(bags, exist_ok=True)
rng = np.random.default_rng(0)
table = ["slide_id,label,split"]
for i in range(8):
    label = i % 2
    with h5py.File(os.path.join(bags, f"slide{i}.h5"), "w") as g:
        d = g.create_dataset("features", data=(rng.normal(size=(60 + i, 1024)) + 0.3 * label).astype(np.float32))
        d.attrs["encoder"], d.attrs["name"] = "uni_v1", f"slide{i}"
        c = g.create_dataset("coords", data=(np.arange(2 * (60 + i)).reshape(-1, 2) * 512).astype(np.int32 if i % 2 else np.int64))
        c.attrs["patch_size"], c.attrs["patch_size_level0"] = 256, 512
    table.append(f"slide{i},{'ab'[label]},{'train' if i < 6 else 'test'}")
with open(os.path.join(scratch, "labels.csv"), "w") as f:
    f.write("\n".join(table) + "\n")
out = os.path.join(scratch, "run")
subprocess.run([wsi, "train-mil", "--features", bags, "--labels", os.path.join(scratch, "labels.csv"), "--out", out,
                "--epochs", "10", "--quiet"], check=True)
subprocess.run([wsi, "predict-mil", "--features", bags, "--model", os.path.join(out, "train-mil"), "--out", out, "--quiet"], check=True)
with h5py.File(os.path.join(out, "predict-mil", "slide0", "predictions.h5"), "r") as p:
    percentiles = p["probabilities"][:, 0]
    assert p["coords"].shape == (60, 2) and 0 < percentiles.min() and percentiles.max() == 1
    print("predict-mil/slide0/predictions.h5:", {k: p[k].shape for k in p})
print(open(os.path.join(out, "predict-mil", "labels.csv")).read())
