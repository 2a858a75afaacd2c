"""Reduced-precision weights: bfloat16 and int8, quantized once from float64 values.

- bfloat16: each weight rounded to the nearest bfloat16, ties to even (through a float32
  rounded to odd, which keeps the one rounding exact).
- int8: symmetric, one scale per output column: s = max|w| / 127 (float32), q = round(w / s)
  in [-127, 127] (a column of zeros: s = 0, q = 0). The weight the network uses is q * s.

Inputs and outputs stay float32; the compiled core rounds each layer's inputs to bfloat16,
or quantizes them to int8 with each row's own scale, inside the tile.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

PRECISIONS = ("float32", "float64", "bfloat16", "int8")
REDUCED = ("bfloat16", "int8")
_ALIASES = {"bf16": "bfloat16", "fp32": "float32", "fp64": "float64"}
# An int32 sum of n products of at most 127 * 127 (csrc/network.c's limit).
MAX_INT8_INPUTS = (2**31 - 1) // (127 * 127)


def canonical_precision(precision: Any) -> str:
    """'bfloat16', 'int8', 'float32' or 'float64', from a name or alias (bf16)."""
    if isinstance(precision, np.dtype) or (isinstance(precision, type) and
                                           issubclass(precision, np.generic)):
        precision = np.dtype(precision).name
    if not isinstance(precision, str):
        raise TypeError(f"precision must be a name ({', '.join(PRECISIONS)}), got {precision!r}")
    name = _ALIASES.get(precision.strip().lower(), precision.strip().lower())
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)} "
                         "(alias bf16)")
    return name


def to_bfloat16(w: Any) -> np.ndarray:
    """The bfloat16 bit patterns (uint16) nearest to w (float64), ties to even."""
    w64 = np.asarray(w, dtype=np.float64)
    with np.errstate(over="ignore"):
        f32 = w64.astype(np.float32)
    bits = f32.view(np.uint32).copy()
    magnitude, sign = bits & np.uint32(0x7FFFFFFF), bits & np.uint32(0x80000000)
    rounded_up = np.abs(f32.astype(np.float64)) > np.abs(w64)
    inexact = f32.astype(np.float64) != w64
    # float32 rounded to odd: truncate, then set the last bit of an inexact result.
    magnitude = (magnitude - rounded_up.astype(np.uint32)) | inexact.astype(np.uint32)
    bits = sign | magnitude
    return ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
            >> np.uint32(16)).astype(np.uint16)


def from_bfloat16(bits: np.ndarray) -> np.ndarray:
    """float32 values of bfloat16 bit patterns."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def to_int8(w: Any) -> Tuple[np.ndarray, np.ndarray]:
    """(q int8, scales float32 per column) with w ~ q * scales."""
    w64 = np.asarray(w, dtype=np.float64)
    scales = (np.max(np.abs(w64), axis=0) / 127).astype(np.float32)
    safe = np.where(scales > 0, scales, 1).astype(np.float64)
    q = np.clip(np.rint(w64 / safe), -127, 127).astype(np.int8)
    return q, scales


def from_int8(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 values q * scale, as the core computes them."""
    return np.asarray(q).astype(np.float32) * np.asarray(scales, dtype=np.float32)


class QuantizedWeights:
    """A dense layer's weights stored in reduced precision: ``precision`` "bfloat16"
    (``values`` the uint16 bit patterns) or "int8" (``values`` int8, ``scales`` one float32
    per output column). ``np.asarray`` of it gives the float32 weights the network uses."""

    __slots__ = ("precision", "values", "scales")

    def __init__(self, precision: str, values: Any, scales: Optional[Any] = None) -> None:
        self.precision = canonical_precision(precision)
        if self.precision not in REDUCED:
            raise ValueError(f"QuantizedWeights hold bfloat16 or int8, not {self.precision}")
        kind = np.uint16 if self.precision == "bfloat16" else np.int8
        values = np.asarray(values)
        if values.dtype != kind or values.ndim != 2:
            raise ValueError(f"{self.precision} weights must be a 2-D {np.dtype(kind).name} "
                             f"array, got {values.ndim}-D {values.dtype}")
        if self.precision == "int8":
            scales = np.asarray(scales)
            if scales.dtype != np.float32 or scales.shape != (values.shape[1],):
                raise ValueError(f"int8 weights need one float32 scale per column "
                                 f"({values.shape[1]},), got {scales.dtype} {scales.shape}")
            if not np.all(np.isfinite(scales)) or np.any(scales < 0):
                raise ValueError("int8 scales must be finite and >= 0")
        elif scales is not None:
            raise ValueError("bfloat16 weights have no scales")
        self.values = _frozen(values)
        self.scales = None if scales is None else _frozen(scales)

    @classmethod
    def quantize(cls, precision: str, w: Any) -> "QuantizedWeights":
        precision = canonical_precision(precision)
        if precision == "bfloat16":
            return cls(precision, to_bfloat16(w))
        return cls(precision, *to_int8(w))

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.values.shape

    @property
    def ndim(self) -> int:
        return 2

    @property
    def size(self) -> int:
        return self.values.size

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + (0 if self.scales is None else self.scales.nbytes)

    def dequantize(self) -> np.ndarray:
        if self.precision == "bfloat16":
            return from_bfloat16(self.values)
        return from_int8(self.values, self.scales)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        values = self.dequantize()
        return values if dtype is None else values.astype(dtype)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, QuantizedWeights) and other.precision == self.precision
                and np.array_equal(other.values, self.values)
                and (self.scales is None or np.array_equal(other.scales, self.scales)))

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):
        return (QuantizedWeights, (self.precision, self.values, self.scales))

    def __repr__(self) -> str:
        return f"QuantizedWeights({self.precision}, shape={self.shape})"


def _frozen(array: np.ndarray) -> np.ndarray:
    copy = np.array(array, order="C", copy=True)
    copy.setflags(write=False)
    return copy
