"""Recover the run file of a killed run (`sgdsim recover FILE`), so that every HDF5 tool reads it.

A run killed by SIGKILL (or a crash, or a lost node) leaves ``<path>.partial`` holding everything up to its
last flush (`runfile`). sgdsim reads it (as an SWMR reader), but plain HDF5 readers, ``h5py.File(path, "r")``
and h5dump, refuse it: the writer streamed in SWMR mode, so the superblock still carries the "file is open
for writing" consistency flags that HDF5 >= 1.10 checks on open. `recover`:
  1. clears those flags in the superblock (what ``h5clear -s`` does), recomputing the superblock checksum;
  2. marks the root attributes ``status = "killed"`` and ``message`` with the last flushed step, and stores
     ``last_flushed_step``/``last_flushed_time`` (the largest step/time recorded in any element);
  3. renames ``<path>.partial`` to ``<path>`` (refusing to overwrite an existing file).

Superblock versions 2 and 3 (HDF5 File Format Specification 3.0, sec. II.A, "Superblock Format Version 2 and
3"): signature (8 bytes), version (1), size of offsets O (1), size of lengths (1), file consistency flags (1),
base address, superblock extension address, end-of-file address, root group object header address (O bytes
each), then the Jenkins lookup3 checksum (4 bytes) of everything before it. Versions 0 and 1 (files written
without SWMR) keep no such flags for HDF5 >= 1.10 readers; only steps 2 and 3 apply.
"""
from __future__ import annotations

import os
import pathlib

import h5py
import numpy as np

from ..errors import RunFileError
from ..runloop import Status

SIGNATURE = b"\x89HDF\r\n\x1a\n"
PARTIAL = ".partial"
_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` (2006), the checksum of HDF5 metadata (H5_checksum_lookup3)."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    pos = 0
    while length - pos > 12:
        a = (a + int.from_bytes(data[pos:pos + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[pos + 4:pos + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[pos + 8:pos + 12], "little")) & _MASK
        a = (a - c) & _MASK; a ^= _rot(c, 4); c = (c + b) & _MASK    # noqa: E702 -- the published mix()
        b = (b - a) & _MASK; b ^= _rot(a, 6); a = (a + c) & _MASK    # noqa: E702
        c = (c - b) & _MASK; c ^= _rot(b, 8); b = (b + a) & _MASK    # noqa: E702
        a = (a - c) & _MASK; a ^= _rot(c, 16); c = (c + b) & _MASK   # noqa: E702
        b = (b - a) & _MASK; b ^= _rot(a, 19); a = (a + c) & _MASK   # noqa: E702
        c = (c - b) & _MASK; c ^= _rot(b, 4); b = (b + a) & _MASK    # noqa: E702
        pos += 12
    if length - pos == 0:
        return c
    tail = data[pos:].ljust(12, b"\0")
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    c ^= b; c = (c - _rot(b, 14)) & _MASK    # noqa: E702 -- the published final()
    a ^= c; a = (a - _rot(c, 11)) & _MASK    # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & _MASK    # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & _MASK    # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & _MASK     # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & _MASK    # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & _MASK    # noqa: E702
    return c


def superblock(path: pathlib.Path) -> tuple[int, int, int]:
    """(version, consistency flags, size in bytes up to and without the checksum) of the superblock at offset 0
    (sgdsim writes no user block); RunFileError if the file does not start with the HDF5 signature."""
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:8] != SIGNATURE:
        raise RunFileError(f"{path}: not an HDF5 file (no superblock signature at offset 0)")
    version = head[8]
    if version < 2:
        return version, 0, 0
    offsets = head[9]
    return version, head[11], 12 + 4 * offsets


def clear_write_flags(path: str | os.PathLike) -> bool:
    """Clear the file consistency flags of a version 2/3 superblock and rewrite its checksum (``h5clear -s``).
    Returns whether anything was cleared; RunFileError if the stored checksum does not match (not a superblock
    this function understands: nothing is written)."""
    path = pathlib.Path(path)
    version, flags, size = superblock(path)
    if version < 2 or flags == 0:
        return False
    with open(path, "r+b") as f:
        block = bytearray(f.read(size + 4))
        if int.from_bytes(block[size:], "little") != lookup3(bytes(block[:size])):
            raise RunFileError(f"{path}: superblock checksum does not match; not clearing its flags")
        block[11] = 0
        block[size:] = lookup3(bytes(block[:size])).to_bytes(4, "little")
        f.seek(0)
        f.write(block)
        f.flush()
        os.fsync(f.fileno())
    return True


def last_flushed(h5: h5py.File) -> tuple[int, float]:
    """The largest step (and its time) stored in any element (groups with step and time datasets); (-1, nan)
    when nothing was flushed."""
    best = (-1, float("nan"))

    def visit(name, obj):
        nonlocal best
        if isinstance(obj, h5py.Group) and "step" in obj and "time" in obj and not name.startswith("theory"):
            step, time = obj["step"], obj["time"]
            n = min(len(step), len(time))
            if n and isinstance(step, h5py.Dataset) and step.ndim == 1:
                k = int(np.argmax(step[:n]))
                if int(step[k]) > best[0]:
                    best = (int(step[k]), float(time[k]))

    h5.visititems(visit)
    return best


def recover(path: str | os.PathLike) -> tuple[pathlib.Path, int, float]:
    """Make the ``.partial`` file of a killed run a plain HDF5 run file: clear the write flags, set status
    'killed' with the last flushed step, rename to the final name. `path` is the ``.partial`` file or the
    final name whose ``.partial`` exists. Returns (final path, last flushed step, its time)."""
    path = pathlib.Path(path)
    partial = path if path.name.endswith(PARTIAL) else path.with_name(path.name + PARTIAL)
    final = partial.with_name(partial.name[:-len(PARTIAL)])
    if not partial.exists():
        raise RunFileError(f"{partial}: no such file (recover takes the .partial file a killed run left)")
    if final.exists():
        raise RunFileError(f"{final}: already exists; move it away before recovering {partial.name}")
    clear_write_flags(partial)
    try:
        with h5py.File(partial, "r+") as h5:
            if "parameters" not in h5 or "h5md" not in h5:
                raise RunFileError(f"{partial}: not an sgdsim run file (missing /parameters or /h5md)")
            step, time = last_flushed(h5)
            h5.attrs["status"] = Status.KILLED.value
            h5.attrs["message"] = (f"killed before closing; recovered up to step {step} (t = {time:g}), the last "
                                   f"flushed" if step >= 0 else "killed before closing; nothing was flushed")
            h5.attrs["last_flushed_step"] = np.int64(step)
            h5.attrs["last_flushed_time"] = np.float64(time)
    except RunFileError:
        raise
    except OSError as e:
        raise RunFileError(f"{partial}: cannot be opened for writing ({' '.join(str(e).split())})") from None
    os.replace(partial, final)
    return final, step, time
