"""Draw the add-on's icon.png (128×128) and logo.png (250×100) for Home Assistant's store.

    python scripts/draw_icons.py [DIRECTORY]    (default: the repository root)

A build-time tool: the committed PNGs are its output, and tests/test_addon.py checks that it
still reproduces them byte for byte, so change the drawing here and commit both.

Shapes are signed distance fields in pixel units; a pixel's coverage is how far its centre
lies inside the edge, which anti-aliases every edge without supersampling. Only arithmetic
and square roots are used (no trigonometry), and PNG encoding is the standard library's, so
the output does not depend on the CPU's vector unit or on an imaging library.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Field = Callable[[Array, Array], Array]
Color = tuple[float, float, float]

ICON_SIZE = (128, 128)
# Home Assistant's developer docs recommend a logo of about 250×100 px.
LOGO_SIZE = (250, 100)

# Indigo to violet behind a white microphone, with saffron sound bars.
TILE_TOP: Color = (0.20, 0.19, 0.60)
TILE_BOTTOM: Color = (0.46, 0.20, 0.78)
WHITE: Color = (1.0, 1.0, 1.0)
SAFFRON: Color = (1.0, 0.70, 0.22)


# -- distance fields --------------------------------------------------------------------------


def segment(ax: float, ay: float, bx: float, by: float, radius: float) -> Field:
    """A stroke with round ends from (ax, ay) to (bx, by)."""

    def field(x: Array, y: Array) -> Array:
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = np.clip(((x - ax) * dx + (y - ay) * dy) / length2, 0.0, 1.0) if length2 else 0.0
        px, py = x - (ax + t * dx), y - (ay + t * dy)
        result: Array = np.sqrt(px * px + py * py) - radius
        return result

    return field


def disc(cx: float, cy: float, radius: float) -> Field:
    return segment(cx, cy, cx, cy, radius)


def half_ring(cx: float, cy: float, radius: float, width: float, side: str) -> Field:
    """Half of a ring of stroke half-width ``width``, on one side of its centre.

    The cut ends are flat; the strokes that meet them supply the round shape.
    """

    def field(x: Array, y: Array) -> Array:
        px, py = x - cx, y - cy
        ring = np.abs(np.sqrt(px * px + py * py) - radius) - width
        across = {"left": px, "right": -px, "top": py, "bottom": -py}[side]
        # Beyond the cut, the distance to the cut line bounds the shape.
        result: Array = np.maximum(ring, across)
        return result

    return field


def rounded_rect(x0: float, y0: float, x1: float, y1: float, radius: float) -> Field:
    def field(x: Array, y: Array) -> Array:
        hx, hy = (x1 - x0) / 2 - radius, (y1 - y0) / 2 - radius
        qx = np.abs(x - (x0 + x1) / 2) - hx
        qy = np.abs(y - (y0 + y1) / 2) - hy
        ox, oy = np.maximum(qx, 0.0), np.maximum(qy, 0.0)
        result: Array = np.sqrt(ox * ox + oy * oy) + np.minimum(np.maximum(qx, qy), 0.0) - radius
        return result

    return field


def union(*fields: Field) -> Field:
    def field(x: Array, y: Array) -> Array:
        result = fields[0](x, y)
        for other in fields[1:]:
            result = np.minimum(result, other(x, y))
        return result

    return field


def coverage(distance: Array, softness: float = 1.0) -> Array:
    """The share of each pixel inside the shape: 1 inside, 0 outside, a ramp across the edge."""
    result: Array = np.clip(0.5 - distance / softness, 0.0, 1.0)
    return result


# -- the drawing ------------------------------------------------------------------------------


def microphone(cx: float, cy: float, scale: float) -> Field:
    """A studio microphone centred on (cx, cy), 72 × ``scale`` pixels tall."""

    def at(dx: float, dy: float) -> tuple[float, float]:
        return cx + dx * scale, cy + dy * scale

    stroke = 2.6 * scale
    body = rounded_rect(*at(-14, -35), *at(14, 9), 14 * scale)
    holder_centre = at(0, -5)
    holder = union(
        half_ring(*holder_centre, 22 * scale, stroke, "bottom"),
        segment(*at(-22, -14), *at(-22, -5), stroke),
        segment(*at(22, -14), *at(22, -5), stroke),
    )
    stand = union(
        segment(*at(0, 17), *at(0, 33), stroke),
        segment(*at(-13, 33), *at(13, 33), stroke),
    )
    return union(body, holder, stand)


def sound_bars(cx: float, cy: float, scale: float) -> Field:
    """Two bars each side of the microphone, shorter outwards: a voice's waveform."""
    width = 2.6 * scale
    bars = []
    for offset, half_height in ((35.0, 11.0), (46.0, 5.5)):
        for side in (-1.0, 1.0):
            x = cx + side * offset * scale
            bars.append(segment(x, cy - half_height * scale, x, cy + half_height * scale, width))
    return union(*bars)


def wordmark(left: float, baseline: float, scale: float) -> tuple[Field, float]:
    """The word "Bodhi" in geometric stroke lettering; returns the field and its right edge.

    Letters are built on an x-height of 24 and an ascender of 38 units; ``left`` is where the
    first stroke's outer edge falls.
    """
    w = 3.4  # stroke half-width, in units
    gap = 5.5  # between letters' outer edges
    parts: list[Field] = []

    def u(x: float, y: float) -> tuple[float, float]:
        return left + x * scale, baseline + y * scale

    def stroke(x0: float, y0: float, x1: float, y1: float) -> None:
        parts.append(segment(*u(x0, y0), *u(x1, y1), w * scale))

    def ring(cx: float, cy: float, radius: float) -> None:
        centre = u(cx, cy)

        def field(x: Array, y: Array) -> Array:
            px, py = x - centre[0], y - centre[1]
            result: Array = np.abs(np.sqrt(px * px + py * py) - radius * scale) - w * scale
            return result

        parts.append(field)

    def half(cx: float, cy: float, radius: float, side: str) -> None:
        parts.append(half_ring(*u(cx, cy), radius * scale, w * scale, side))

    x = w  # the B's stem, its outer edge at ``left``
    top, mid, bottom = -38.0, -19.0, 0.0
    stroke(x, top, x, bottom)
    upper, lower = 9.0, 10.5  # the bowls' straight runs; the lower bowl is wider
    bowl = (mid - top) / 2
    stroke(x, top, x + upper, top)
    stroke(x, mid, x + lower, mid)
    stroke(x, bottom, x + lower, bottom)
    half(x + upper, top + bowl, bowl, "right")
    half(x + lower, mid + bowl, bowl, "right")
    x += lower + bowl + w + gap

    o = 12.0  # the round letters' radius, on the x-height's centre line
    x += w + o  # o
    ring(x, -o, o)
    x += o + w + gap

    x += w + o  # d
    ring(x, -o, o)
    stroke(x + o, top, x + o, bottom)
    x += o + w + gap

    x += w  # h
    arch = 10.5
    stroke(x, top, x, bottom)
    half(x + arch, -24 + arch, arch, "top")
    stroke(x + 2 * arch, -24 + arch, x + 2 * arch, bottom)
    x += 2 * arch + w + gap

    x += w  # i
    stroke(x, -24, x, bottom)
    parts.append(disc(*u(x, top + w + 0.5), (w + 0.6) * scale))
    x += w

    return union(*parts), left + x * scale


class Canvas:
    """Premultiplied RGBA in floating point; layers are painted over one another."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        self.x, self.y = xs + 0.5, ys + 0.5  # pixel centres
        self.rgb = np.zeros((height, width, 3))
        self.alpha = np.zeros((height, width))

    def paint(self, alpha: Array, color: Array | Color, opacity: float = 1.0) -> None:
        a = alpha * opacity
        rgb = np.broadcast_to(np.asarray(color, dtype=np.float64), self.rgb.shape)
        self.rgb = rgb * a[..., None] + self.rgb * (1.0 - a[..., None])
        self.alpha = a + self.alpha * (1.0 - a)

    def gradient(self, top: Color, bottom: Color) -> Array:
        """A diagonal blend, ``top`` at the top-left corner and ``bottom`` at the bottom-right."""
        t = (self.x / self.width + self.y / self.height) / 2.0
        start, end = np.asarray(top), np.asarray(bottom)
        result: Array = start + (end - start) * t[..., None]
        return result

    def tile(self, radius: float, margin: float) -> Array:
        """Paint the gradient tile; returns its coverage, to keep what follows inside it."""
        shape = coverage(
            rounded_rect(margin, margin, self.width - margin, self.height - margin, radius)(
                self.x, self.y
            )
        )
        self.paint(shape, self.gradient(TILE_TOP, TILE_BOTTOM))
        return shape

    def shape(self, field: Field, color: Color, clip: Array, shadow: bool = True) -> None:
        if shadow:
            # A soft shadow a little below the shape lifts it off the tile.
            offset = field(self.x, self.y - 1.5)
            self.paint(coverage(offset - 0.5, softness=3.5) * clip, (0.05, 0.02, 0.15), 0.30)
        self.paint(coverage(field(self.x, self.y)) * clip, color)

    def png(self) -> bytes:
        alpha = self.alpha
        safe = np.where(alpha > 0.0, alpha, 1.0)
        rgb = self.rgb / safe[..., None]  # PNG alpha is straight, not premultiplied
        pixels = np.concatenate([rgb, alpha[..., None]], axis=2)
        return encode_png(np.floor(np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def draw_icon() -> bytes:
    width, height = ICON_SIZE
    canvas = Canvas(width, height)
    inside = canvas.tile(radius=28.0, margin=2.0)
    canvas.shape(sound_bars(64.0, 56.0, 1.0), SAFFRON, inside, shadow=False)
    canvas.shape(microphone(64.0, 63.0, 1.0), WHITE, inside)
    return canvas.png()


def draw_logo() -> bytes:
    width, height = LOGO_SIZE
    canvas = Canvas(width, height)
    inside = canvas.tile(radius=24.0, margin=2.0)
    scale = 0.74
    canvas.shape(sound_bars(52.0, 45.0, scale), SAFFRON, inside, shadow=False)
    canvas.shape(microphone(52.0, 50.5, scale), WHITE, inside)
    # The word's width is known only once it is laid out: lay it out once to measure it,
    # then centre it between the microphone's sound bars and the right edge.
    letter_scale = 0.98
    _, right = wordmark(0.0, 0.0, letter_scale)
    start, end = 95.0, width - 14.0
    left = start + (end - start - right) / 2
    field, _ = wordmark(left, 69.0, letter_scale)
    canvas.shape(field, WHITE, inside)
    return canvas.png()


# -- PNG --------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _filtered(pixels: npt.NDArray[np.uint8]) -> bytes:
    """The image data, each row with the PNG filter that leaves the smallest residuals."""
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels).astype(np.int16)
    left = np.zeros_like(rows)
    left[:, channels:] = rows[:, :-channels]
    up = np.zeros_like(rows)
    up[1:] = rows[:-1]
    up_left = np.zeros_like(rows)
    up_left[1:, channels:] = rows[:-1, :-channels]
    # Paeth: whichever of left, up and up-left is nearest to left + up - up-left.
    estimate = left + up - up_left
    to_left, to_up, to_corner = (np.abs(estimate - v) for v in (left, up, up_left))
    paeth = np.where(
        (to_left <= to_up) & (to_left <= to_corner), left, np.where(to_up <= to_corner, up, up_left)
    )
    candidates = np.stack(
        [rows, rows - left, rows - up, rows - (left + up) // 2, rows - paeth]
    ).astype(np.uint8)
    # The usual heuristic: the smallest sum of residuals read as signed bytes.
    cost = np.abs(candidates.astype(np.int8).astype(np.int64)).sum(axis=2)
    choice = cost.argmin(axis=0)
    out = bytearray()
    for row, kind in enumerate(choice):
        out.append(int(kind))
        out += candidates[kind, row].tobytes()
    return bytes(out)


def encode_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """An 8-bit RGBA PNG with no ancillary chunks (no time stamp, so the output is stable)."""
    height, width, _ = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(_filtered(pixels), 9))
        + _chunk(b"IEND", b"")
    )


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: python scripts/draw_icons.py [DIRECTORY]", file=sys.stderr)
        return 2
    directory = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent
    for name, draw in (("icon.png", draw_icon), ("logo.png", draw_logo)):
        path = directory / name
        path.write_bytes(draw())
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
