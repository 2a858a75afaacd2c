"""The CPU's reduced-precision features as the OS reports them (/proc/cpuinfo), for the headers
of `fastmlp bench` and benchmarks/: which bfloat16 and int8 instructions this machine has.

Only reported, never used to choose a kernel: the compiled core asks the CPU itself (cpuid and
xgetbv, csrc/cpu.c).
"""
from __future__ import annotations

from typing import Dict

from ._quantize import REDUCED

CPU_FLAGS = ("avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")


def cpu_flags() -> Dict[str, bool]:
    """{flag: present} for CPU_FLAGS, from /proc/cpuinfo (all False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            present = set(next((line.split(":", 1)[1].split() for line in f
                                if line.startswith("flags")), []))
    except OSError:
        present = set()
    return {flag: flag in present for flag in CPU_FLAGS}


def has_amx(flags: Dict[str, bool], precision: str) -> bool:
    """Whether the flags include AMX tiles for `precision` ("bfloat16" or "int8")."""
    return flags.get("amx_tile", False) and flags.get(
        "amx_bf16" if precision == "bfloat16" else "amx_int8", False)


def kernel_header(kernel: str, flags: Dict[str, bool]) -> str:
    """'fastmlp kernel: avx2; CPU reduced-precision flags: avx512_bf16 no, ... (no AMX)'."""
    have = ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in flags.items())
    amx = [p for p in REDUCED if has_amx(flags, p)]
    return (f"fastmlp kernel: {kernel}; CPU reduced-precision flags: {have}"
            f" ({'AMX for ' + ', '.join(amx) if amx else 'no AMX'})")
