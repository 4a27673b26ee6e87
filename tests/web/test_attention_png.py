"""The attention picture: the photo, upright and scaled, with the word's grid coloured over it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.web.attention_png import MAX_SIDE, AttentionImageError, forget_photos, render

BIG = 40_000_000


def photo(size: tuple[int, int], colour: str = "gray", *, fmt: str = "PNG", orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, colour)
    if orientation is None:
        image.save(out, format=fmt)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation  # EXIF Orientation
        image.save(out, format=fmt, exif=exif)
    return out.getvalue()


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image.convert("RGB")


def test_the_picture_is_the_photo_scaled_to_the_longer_side() -> None:
    assert decoded(render(photo((640, 480)), [0.5] * 4, 2, max_pixels=BIG)).size == (MAX_SIDE, 168)
    assert decoded(render(photo((30, 60)), [0.5] * 49, 7, max_pixels=BIG)).size == (112, MAX_SIDE)


def test_a_rotated_camera_photo_is_drawn_upright() -> None:
    # Orientation 6: stored landscape, shown rotated 90 degrees, so portrait.
    drawn = decoded(render(photo((300, 200), fmt="JPEG", orientation=6), [0.0] * 4, 2, max_pixels=BIG))
    assert drawn.size == (149, MAX_SIDE)


def test_where_the_model_looked_is_warm_and_elsewhere_is_cold() -> None:
    grid = [1.0, 0.0, 0.0, 0.0]  # top-left quarter only
    drawn = decoded(render(photo((200, 200), "gray"), grid, 2, max_pixels=BIG))
    hot_r, hot_g, hot_b = drawn.getpixel((5, 5))  # type: ignore[misc]
    cold_r, cold_g, cold_b = drawn.getpixel((194, 194))  # type: ignore[misc]
    assert hot_r > 180 and hot_g > 150 and hot_b < 120  # yellow over gray
    assert cold_b > cold_r and cold_r < 90  # dark blue over gray


@pytest.mark.parametrize(
    ("data", "grid", "side", "max_pixels"),
    [
        (photo((20, 20)), [0.1] * 3, 2, BIG),  # grid and side disagree
        (photo((20, 20)), [], 0, BIG),
        (b"not a photo at all", [0.1] * 4, 2, BIG),
        (photo((64, 64))[:60], [0.1] * 4, 2, BIG),  # truncated
        (photo((100, 100)), [0.1] * 4, 2, 9_999),  # more pixels than allowed
    ],
)
def test_what_cannot_be_drawn_is_refused(data: bytes, grid: list[float], side: int, max_pixels: int) -> None:
    with pytest.raises(AttentionImageError):
        render(data, grid, side, max_pixels=max_pixels)


def test_a_keyed_photo_is_decoded_once_and_forgotten_on_request() -> None:
    first = render(photo((50, 50), "white"), [1.0], 1, max_pixels=BIG, key="request-1")
    # Same key: the kept copy is drawn on, so the bytes are not decoded again.
    assert render(b"not decoded again", [1.0], 1, max_pixels=BIG, key="request-1") == first
    forget_photos()
    with pytest.raises(AttentionImageError):
        render(b"not decoded again", [1.0], 1, max_pixels=BIG, key="request-1")
