"""Independent oracles: pybdm (the reference BDM) and the paper's quantiser as docs/design.md writes it.

Nothing here calls qubd: tests compare qubd against these.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import pickle
import warnings

import numpy as np
import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pybdm imports the deprecated pkg_resources
    import pybdm


class PybdmOrderedTable(dict):
    """One shape of a pybdm CTM table: dict lookups as usual, ``items()`` / ``values()`` in pybdm's
    order (decreasing CTM, ties in file order), computed lazily with numpy."""

    def _order(self):
        if not hasattr(self, "_sorted"):
            keys = list(dict.keys(self))
            values = np.fromiter(dict.values(self), dtype=np.float64, count=len(keys))
            self._sorted = (keys, values, np.argsort(-values, kind="stable"))
        return self._sorted

    def items(self):
        keys, values, order = self._order()
        return ((keys[i], float(values[i])) for i in order)

    def values(self):
        _, values, order = self._order()
        return values[order].tolist()


@functools.cache
def fast_ctm_dataset(name):
    """pybdm's ``get_ctm_dataset``: the same data files and order, without the slow Python sort."""
    from pybdm.ctmdata import CTM_DATASETS
    from pybdm.ctmdata import __name__ as data_package

    raw = importlib.resources.files(data_package).joinpath(CTM_DATASETS[name]).read_bytes()
    dct = pickle.loads(gzip.decompress(raw))
    tables = {shape: PybdmOrderedTable(entries) for shape, entries in dct.items()}
    missing = {shape: np.max(list(entries.values())) + 1 for shape, entries in dct.items()}
    return tables, missing


# pybdm sorts its multi-million-entry tables with a Python key function (~50 s for the k-ary ones);
# every test uses the same data files in the same order, loaded with numpy, for the whole session.
pybdm.bdm.get_ctm_dataset = fast_ctm_dataset

_BDM_2D = pybdm.BDM(ndim=2)


def pybdm_bdm(x: np.ndarray) -> float:
    """pybdm's BDM of a 2D binary array (ignore partition)."""
    return _BDM_2D.bdm(np.asarray(x, dtype=int))


def paper_range(w2: torch.Tensor, clip: float | None) -> tuple[np.float32, np.float32]:
    """[lo, hi]: min/max, or torch.quantile at q and 1 - q with q = (1 - clip/100)/2."""
    flat = w2.float().reshape(-1)
    if clip is None:
        return np.float32(flat.min().item()), np.float32(flat.max().item())
    q = (1 - clip / 100) / 2
    return np.float32(torch.quantile(flat, q).item()), np.float32(torch.quantile(flat, 1 - q).item())


def paper_quantize(w: torch.Tensor, bits: int, clip: float | None) -> np.ndarray:
    """docs/design.md 1.2 steps 1-3 in numpy float32: Q = clamp(rint((W2 - lo) / delta), 0, 2^b - 1)."""
    w2 = w.flatten(1) if w.ndim > 2 else w
    a = w2.float().numpy()
    lo, hi = paper_range(w2, clip)
    span = np.float32(hi - lo)
    if span < np.float32(1e-8):
        return np.zeros(a.shape, dtype=np.int64)
    delta = np.float32(span / np.float32(2**bits - 1))
    x = (a - lo) / delta  # float32, correctly rounded
    assert x.dtype == np.float32
    return np.clip(np.rint(x), 0, 2**bits - 1).astype(np.int64)


def paper_qubd(w: torch.Tensor, bits: int, clip: float | None) -> np.ndarray:
    """Per-plane BDM: the paper's quantiser, then pybdm on each bit-plane (plane 0 = LSB)."""
    q = paper_quantize(w, bits, clip)
    return np.array([pybdm_bdm((q >> i) & 1) for i in range(bits)])
