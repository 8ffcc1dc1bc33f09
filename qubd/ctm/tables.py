"""Loading the CTM tables, and the dense 65,536-entry table for 4x4 binary block codes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

DATA_DIR = Path(__file__).resolve().parent / "data"
DATASETS = ("ctm-b2-d4x4", "ctm-b2-d12", "ctm-b4-d12", "ctm-b5-d12", "ctm-b6-d12", "ctm-b9-d12")
BLOCK_CODES = 1 << 16  # number of distinct 4x4 binary blocks


@dataclass(frozen=True)
class CTMTable:
    """One CTM dataset: per block shape, sorted normalised keys (base-k integers) and CTM values."""

    name: str
    nsymbols: int
    codes: dict[tuple[int, ...], np.ndarray]
    values: dict[tuple[int, ...], np.ndarray]

    def lookup(self, shape: tuple[int, ...], keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CTM values of normalised ``keys`` of blocks of ``shape``, and a mask of keys present."""
        codes, values = self.codes[shape], self.values[shape]
        pos = np.clip(np.searchsorted(codes, keys), 0, len(codes) - 1)
        found = codes[pos] == keys
        return np.where(found, values[pos], np.nan), found

    def missing_value(self, shape: tuple[int, ...]) -> float:
        """pybdm's stand-in for a block absent from the table: the shape's largest CTM value + 1."""
        return float(self.values[shape].max()) + 1.0


def _parse_shape(name: str) -> tuple[int, ...]:
    return tuple(int(s) for s in name.split("x"))


@cache
def load_table(name: str) -> CTMTable:
    """Load a CTM dataset by pybdm's name, e.g. ``"ctm-b2-d4x4"`` (cached; large ones load lazily)."""
    name = name.lower()
    if name not in DATASETS:
        raise ValueError(f"unknown CTM dataset {name!r}; available: {', '.join(DATASETS)}")
    codes: dict[tuple[int, ...], np.ndarray] = {}
    values: dict[tuple[int, ...], np.ndarray] = {}
    with np.load(DATA_DIR / f"{name}.npz", allow_pickle=False) as data:
        for key in data.files:
            shape_name, field = key.split("/")
            target = codes if field == "codes" else values
            target[_parse_shape(shape_name)] = data[key]
    return CTMTable(name=name, nsymbols=int(name.split("-")[1][1:]), codes=codes, values=values)


@cache
def _ctm16_cpu() -> torch.Tensor:
    table = load_table("ctm-b2-d4x4")
    normalised = table.values[(4, 4)]
    assert len(normalised) == BLOCK_CODES // 2 and np.array_equal(
        table.codes[(4, 4)], np.arange(BLOCK_CODES // 2)
    ), "ctm-b2-d4x4 must hold every 4x4 block whose first cell is 0"
    code = np.arange(BLOCK_CODES)
    # Bit 15 is the block's first cell; a block starting with 1 is normalised by complementing it.
    normalised_code = np.where(code & 0x8000, code ^ 0xFFFF, code)
    return torch.from_numpy(normalised[normalised_code].copy())


@cache
def ctm16(device: torch.device | str = "cpu") -> torch.Tensor:
    """float64 [65536]: CTM value of every raw 4x4 binary block code (see ``qubd.reference.blocks``)."""
    return _ctm16_cpu().to(device)
