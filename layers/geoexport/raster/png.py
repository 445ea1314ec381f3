"""A small PNG encoder for 8-bit tiles: numpy rows, the 'Up' filter, zlib (which releases the GIL).

GDAL's PNG driver needs a MEM dataset and a CreateCopy per tile; writing the few PNG chunks directly is
faster and lets the renderer's threads compress tiles in parallel.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # samples per pixel -> gray, gray+alpha, RGB, RGBA


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(pixels: npt.NDArray[np.uint8], level: int = 6) -> bytes:
    """Encode a (bands, height, width) uint8 array with 1-4 bands as PNG."""
    bands, height, width = pixels.shape
    if pixels.dtype != np.uint8 or bands not in _COLOR_TYPE:
        raise ValueError("expected 1-4 bands of uint8")
    interleaved = np.ascontiguousarray(np.moveaxis(pixels, 0, -1)).reshape(height, width * bands)
    filtered = np.empty((height, width * bands + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # 'Up': each byte minus the byte above it (mod 256)
    filtered[0, 1:] = interleaved[0]
    np.subtract(interleaved[1:], interleaved[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[bands], 0, 0, 0)
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)),
            _chunk(b"IEND", b""),
        )
    )
