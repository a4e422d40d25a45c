"""A small equity-curve PNG, drawn and encoded in pure Python (zlib + struct): no plotting
library for one line chart a day."""

from __future__ import annotations

import struct
import zlib

WIDTH, HEIGHT, MARGIN = 640, 320, 24
BACKGROUND = (255, 255, 255)
GRID = (225, 228, 232)
LINE = (33, 102, 172)
FILL = (214, 229, 243)


def _png(pixels: list[bytearray], width: int, height: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(row) for row in pixels)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def equity_png(values: list[float], width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A line chart of `values` (oldest first) with a light fill below and a 4-line grid."""
    pixels = [bytearray(BACKGROUND * width) for _ in range(height)]

    def put(x: int, y: int, color: tuple[int, int, int]) -> None:
        if 0 <= x < width and 0 <= y < height:
            pixels[y][3 * x : 3 * x + 3] = bytes(color)

    top, bottom = MARGIN, height - MARGIN
    for i in range(5):
        y = top + (bottom - top) * i // 4
        for x in range(MARGIN, width - MARGIN):
            put(x, y, GRID)
    if len(values) >= 2:
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        step = (width - 2 * MARGIN - 1) / (len(values) - 1)
        points = [
            (round(MARGIN + i * step), round(bottom - (v - low) / span * (bottom - top)))
            for i, v in enumerate(values)
        ]
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for s in range(steps + 1):
                x = round(x0 + (x1 - x0) * s / steps)
                y = round(y0 + (y1 - y0) * s / steps)
                for yy in range(y + 2, bottom):
                    if pixels[yy][3 * x : 3 * x + 3] == bytes(BACKGROUND):
                        put(x, yy, FILL)
                for dy in (-1, 0, 1):
                    put(x, y + dy, LINE)
    return _png(pixels, width, height)
