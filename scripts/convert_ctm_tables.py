"""Convert pybdm's CTM tables (gzip pickles) into the pickle-free .npz files shipped in qubd/ctm/data.

Run once, with pybdm installed (it is only a source of data, never imported by qubd at run time):

    python scripts/convert_ctm_tables.py

Each pybdm dataset ``ctm-b{k}-d{shape}`` maps a block shape to ``{normalised key string: CTM bits}``.
The .npz holds, per block shape, the keys as base-k integers (first symbol most significant;
for 2D shapes the row-major string) in ascending order, and the CTM values beside them.
"""

from __future__ import annotations

import gzip
import pickle
from importlib import resources
from pathlib import Path

import numpy as np

DATASETS = ["ctm-b2-d4x4", "ctm-b2-d12", "ctm-b4-d12", "ctm-b5-d12", "ctm-b6-d12", "ctm-b9-d12"]
OUT = Path(__file__).resolve().parent.parent / "qubd" / "ctm" / "data"


def shape_name(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def convert(name: str) -> Path:
    nsymbols = int(name.split("-")[1][1:])
    # pybdm's own data file: trusted input, read once here so that qubd never unpickles anything.
    raw = resources.files("pybdm.ctmdata").joinpath(f"{name}.pkl.gz").read_bytes()
    table = pickle.loads(gzip.decompress(raw))
    arrays: dict[str, np.ndarray] = {}
    for shape, entries in table.items():
        keys = np.array([int(k, nsymbols) for k in entries], dtype=np.int64)
        values = np.array(list(entries.values()), dtype=np.float64)
        order = np.argsort(keys, kind="stable")
        arrays[f"{shape_name(shape)}/codes"] = keys[order]
        arrays[f"{shape_name(shape)}/ctm"] = values[order]
    path = OUT / f"{name}.npz"
    np.savez_compressed(path, **arrays)
    return path


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in DATASETS:
        path = convert(name)
        print(f"{name}: {path.stat().st_size / 1e6:.1f} MB -> {path}")


if __name__ == "__main__":
    main()
