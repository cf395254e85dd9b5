"""Read the pixels of a PNG, as screenshots come from Chromium: 8-bit RGB or RGBA, not interlaced.

Enough of the format (RFC 2083) to tell a blank screenshot from a page,
without an imaging library.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type: RGB, RGBA


@dataclasses.dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]  # unfiltered scanlines, `channels` bytes a pixel

    def count(self, *, darker_than: int) -> int:
        """How many pixels have a colour channel below ``darker_than`` (255 is white)."""
        step = self.channels
        return sum(
            1
            for row in self.rows
            for x in range(0, len(row), step)
            if min(row[x : x + 3]) < darker_than
        )


def decode(data: bytes) -> Image:
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG: the signature is missing")
    header, idat = _chunks(data[len(SIGNATURE) :])
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(
            f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}"
        )
    channels = _CHANNELS[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = _unfilter(raw[start], raw[start + 1 : start + 1 + stride], previous, channels)
        rows.append(line)
        previous = line
    return Image(width=width, height=height, channels=channels, rows=rows)


def _chunks(data: bytes) -> tuple[bytes, bytes]:
    header, idat, at = b"", bytearray(), 0
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    return header, bytes(idat)


def _unfilter(kind: int, line: bytes, up: bytes, bpp: int) -> bytes:
    """Undo one scanline's filter (RFC 2083, 6.3): None, Sub, Up, Average or Paeth."""
    if kind == 0:
        return line
    out = bytearray(line)
    if kind == 2:
        return bytes((a + b) & 0xFF for a, b in zip(line, up, strict=True))
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        if kind == 1:
            out[i] = (out[i] + left) & 0xFF
        elif kind == 3:
            out[i] = (out[i] + ((left + up[i]) >> 1)) & 0xFF
        elif kind == 4:
            out[i] = (out[i] + _paeth(left, up[i], up[i - bpp] if i >= bpp else 0)) & 0xFF
        else:
            raise ValueError(f"unknown PNG filter {kind}")
    return bytes(out)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c
