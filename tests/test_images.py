"""captionbot.images: every fixture is generated here with Pillow."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import subprocess
import sys
import zlib

import pytest
from PIL import EpsImagePlugin, Image, ImageFile, PngImagePlugin, features

from captionbot import images
from captionbot.images import (
    CorruptImageError,
    ImageError,
    ImageInfo,
    ImageTooLargeError,
    NotAnImageError,
    TooManyPixelsError,
    UnsupportedImageError,
    inspect_image,
    load_image,
    sniff_kind,
)

RED, GREEN, BLUE, YELLOW, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 255, 255)


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def quadrants(w: int = 64, h: int = 48) -> Image.Image:
    """Red, green / blue, yellow quadrants: a wrong size, rotation or channel order all show."""
    im = Image.new("RGB", (w, h))
    im.paste(RED, (0, 0, w // 2, h // 2))
    im.paste(GREEN, (w // 2, 0, w, h // 2))
    im.paste(BLUE, (0, h // 2, w // 2, h))
    im.paste(YELLOW, (w // 2, h // 2, w, h))
    return im


def assert_close(pixel, expected, tol: int = 40) -> None:
    assert all(abs(a - b) <= tol for a, b in zip(pixel, expected, strict=True)), (pixel, expected)


def assert_quadrants(im: Image.Image, tol: int = 40) -> None:
    w, h = im.size
    assert_close(im.getpixel((w // 4, h // 4)), RED, tol)
    assert_close(im.getpixel((3 * w // 4, h // 4)), GREEN, tol)
    assert_close(im.getpixel((w // 4, 3 * h // 4)), BLUE, tol)
    assert_close(im.getpixel((3 * w // 4, 3 * h // 4)), YELLOW, tol)


def with_huge_ihdr(png: bytes, width: int, height: int) -> bytes:
    """Patch a PNG's IHDR to claim width x height, with a valid CRC so Pillow believes it."""
    assert png[12:16] == b"IHDR"
    ihdr = bytearray(png[16:29])
    ihdr[0:8] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    crc = zlib.crc32(b"IHDR" + bytes(ihdr)).to_bytes(4, "big")
    return png[:16] + bytes(ihdr) + crc + png[33:]


# --------------------------------------------------------------------------------------------- formats

FORMATS = [
    ("JPEG", {"quality": 95}),
    ("PNG", {}),
    ("WEBP", {"quality": 95}),
    ("GIF", {}),
    ("BMP", {}),
    ("TIFF", {}),
    ("TIFF", {"compression": "tiff_lzw"}),
]


@pytest.mark.parametrize(("fmt", "params"), FORMATS, ids=lambda v: v if isinstance(v, str) else "")
def test_formats_round_trip_to_rgb(fmt, params):
    data = encode(quadrants(), fmt, **params)
    im = load_image(data)
    assert im.mode == "RGB"
    assert im.size == (64, 48)
    assert_quadrants(im)
    info = inspect_image(data)
    assert (info.format, info.width, info.height) == (fmt, 64, 48)
    assert info.mime == Image.MIME[fmt]


def test_heic_round_trip():
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    data = encode(quadrants(), "HEIF", quality=90)
    assert sniff_kind(data) == "heif"
    im = load_image(data)
    assert (im.mode, im.size) == ("RGB", (64, 48))
    assert_quadrants(im)
    info = inspect_image(data)
    assert info.format == "HEIF"
    assert info.mime in ("image/heic", "image/heif")


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF codec")
def test_avif_round_trip():
    data = encode(quadrants(), "AVIF", quality=90)
    assert sniff_kind(data) == "avif"
    assert "AVIF" in images.supported_formats()
    im = load_image(data)
    assert (im.mode, im.size) == ("RGB", (64, 48))
    assert_quadrants(im)
    assert inspect_image(data).mime == "image/avif"


def test_gif_takes_the_first_frame():
    frames = [Image.new("RGB", (30, 20), c) for c in (RED, BLUE, GREEN)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3  # the fixture really is animated
    im = load_image(data)
    assert im.size == (30, 20)
    assert_close(im.getpixel((15, 10)), RED, tol=5)


def test_mpo_is_reported_as_jpeg():
    frames = [quadrants(), Image.new("RGB", (64, 48), BLUE)]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    info = inspect_image(data)
    assert (info.format, info.mime) == ("JPEG", "image/jpeg")
    assert_quadrants(load_image(data))


def test_path_input(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(encode(quadrants(), "PNG"))
    assert_quadrants(load_image(path), tol=0)
    assert load_image(str(path)).size == (64, 48)
    assert inspect_image(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_6_rotates_clockwise(fmt):
    # 40x20: left half red, right half blue, the top 4 rows green.
    im = Image.new("RGB", (40, 20), RED)
    im.paste(BLUE, (20, 0, 40, 20))
    im.paste(GREEN, (0, 0, 40, 4))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(im, fmt, exif=exif.tobytes(), quality=95)

    out = load_image(data)
    assert out.size == (20, 40)
    # Turned clockwise: the left half comes to the top, the top rows go to the right edge.
    assert_close(out.getpixel((5, 10)), RED)
    assert_close(out.getpixel((5, 30)), BLUE)
    assert_close(out.getpixel((18, 10)), GREEN)
    assert_close(out.getpixel((18, 30)), GREEN)
    info = inspect_image(data)
    assert (info.width, info.height) == (20, 40)


def test_broken_exif_is_ignored_not_fatal():
    data = encode(quadrants(), "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff", quality=95)
    assert_quadrants(load_image(data))


# -------------------------------------------------------------------------------------------- modes


def test_rgba_transparent_pixels_become_white():
    im = Image.new("RGBA", (4, 1))
    im.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent black
    im.putpixel((1, 0), (255, 0, 0, 255))  # opaque red
    im.putpixel((2, 0), (0, 0, 0, 128))  # half-transparent black -> mid grey
    im.putpixel((3, 0), (0, 0, 255, 0))  # transparent blue is white too
    for fmt in ("PNG", "WEBP", "TIFF"):
        out = load_image(encode(im, fmt, lossless=True) if fmt == "WEBP" else encode(im, fmt))
        assert out.mode == "RGB"
        assert out.getpixel((0, 0)) == WHITE, fmt
        assert out.getpixel((1, 0)) == RED, fmt
        assert_close(out.getpixel((2, 0)), (127, 127, 127), tol=2)
        assert out.getpixel((3, 0)) == WHITE, fmt


def test_la_alpha_over_white():
    im = Image.new("LA", (2, 1))
    im.putpixel((0, 0), (0, 0))
    im.putpixel((1, 0), (50, 255))
    out = load_image(encode(im, "PNG"))
    assert out.getpixel((0, 0)) == WHITE
    assert out.getpixel((1, 0)) == (50, 50, 50)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency(fmt):
    im = Image.new("P", (2, 1))
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.putpixel((1, 0), 1)
    out = load_image(encode(im, fmt, transparency=0))
    assert out.getpixel((0, 0)) == WHITE  # palette index 0 is transparent black
    assert out.getpixel((1, 0)) == RED


def test_palette_without_transparency():
    im = quadrants().convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    out = load_image(encode(im, "PNG"))
    assert out.mode == "RGB"
    assert_quadrants(out, tol=0)


def test_grey_png_with_trns_chunk():
    im = Image.new("L", (2, 1), 0)
    im.putpixel((1, 0), 90)
    out = load_image(encode(im, "PNG", transparency=0))
    assert out.getpixel((0, 0)) == WHITE
    assert out.getpixel((1, 0)) == (90, 90, 90)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk(fmt):
    im = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    im.paste((255, 255, 0, 0), (4, 0, 8, 8))  # blue
    out = load_image(encode(im, fmt, quality=95))
    assert out.mode == "RGB"
    assert_close(out.getpixel((1, 4)), RED)
    assert_close(out.getpixel((6, 4)), BLUE)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF"])
def test_greyscale_l(fmt):
    im = Image.new("L", (8, 8), 30)
    im.paste(200, (4, 0, 8, 8))
    out = load_image(encode(im, fmt, quality=95))
    assert out.mode == "RGB"
    assert_close(out.getpixel((1, 4)), (30, 30, 30), tol=4)
    assert_close(out.getpixel((6, 4)), (200, 200, 200), tol=4)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_grey_is_scaled_not_clipped(fmt):
    im = Image.new("I;16", (3, 1))
    for x, v in enumerate((0, 40000, 65535)):
        im.putpixel((x, 0), v)
    data = encode(im, fmt)
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")  # the fixture really is 16-bit
    out = load_image(data)
    assert [out.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (156, 156, 156), (255, 255, 255)]


def test_32_bit_int_grey_holding_16_bit_values():
    im = Image.new("I", (2, 1))
    im.putpixel((0, 0), 0)
    im.putpixel((1, 0), 51200)  # 200 * 256
    out = load_image(encode(im, "TIFF"))
    assert out.getpixel((0, 0)) == (0, 0, 0)
    assert out.getpixel((1, 0)) == (200, 200, 200)


def test_float_grey_in_unit_range():
    im = Image.new("F", (2, 1))
    im.putpixel((0, 0), 0.0)
    im.putpixel((1, 0), 1.0)
    data = encode(im, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "F"
    out = load_image(data)
    assert out.getpixel((0, 0)) == (0, 0, 0)
    assert out.getpixel((1, 0)) == WHITE


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "GIF"])
def test_one_bit(fmt):
    im = Image.new("1", (8, 8), 0)
    im.paste(1, (4, 0, 8, 8))
    out = load_image(encode(im, fmt))
    assert out.mode == "RGB"
    assert out.getpixel((1, 1)) == (0, 0, 0)
    assert out.getpixel((6, 1)) == WHITE


# ------------------------------------------------------------------------------------ broken or wrong


def noisy_photo(size: int = 160) -> Image.Image:
    return Image.effect_noise((size, size), 60).convert("RGB")  # noise: no compression, a long stream


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_raises_corrupt(fmt):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    data = encode(noisy_photo(), fmt)
    assert load_image(data).size == (160, 160)  # the whole file is fine
    with pytest.raises(CorruptImageError) as err:
        load_image(data[: len(data) // 2])
    assert err.value.code == "corrupt"
    assert isinstance(err.value, ValueError)
    assert "damaged" in err.value.user_message


def test_truncated_header_raises_corrupt():
    data = encode(quadrants(), "PNG")
    with pytest.raises(CorruptImageError):
        load_image(data[:40])  # the PNG signature and half an IHDR
    with pytest.raises(CorruptImageError):
        inspect_image(encode(quadrants(), "JPEG")[:200])


def test_random_bytes_are_not_an_image():
    blob = random.Random(0).randbytes(5000)
    assert sniff_kind(blob) is None
    with pytest.raises(NotAnImageError) as err:
        load_image(blob)
    assert err.value.code == "not_an_image"
    assert "JPEG" in err.value.user_message and "HEIC" in err.value.user_message


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("BM is not a bitmap, this is a shopping list: eggs, milk, bread\n" * 20)
    with pytest.raises(NotAnImageError):
        load_image(path)
    with pytest.raises(NotAnImageError):
        inspect_image(path.read_bytes())


def test_empty_is_not_an_image():
    with pytest.raises(NotAnImageError):
        load_image(b"")


def test_eps_is_refused_without_pillow_parsing_it(monkeypatch):
    data = encode(Image.new("RGB", (8, 8), RED), "EPS")
    assert sniff_kind(data) == "eps"

    calls = []
    real_open = EpsImagePlugin.EpsImageFile._open

    def spy(self):
        calls.append(1)
        return real_open(self)

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", spy)
    with pytest.raises(UnsupportedImageError) as err:
        load_image(data)
    assert err.value.code == "unsupported"
    assert "EPS" in err.value.user_message
    assert calls == [], "Pillow's EPS parser (the Ghostscript path) must never see an upload"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (encode(Image.new("RGB", (16, 16), RED), "ICO"), "ICO"),
        (encode(Image.new("RGB", (16, 16), RED), "PSD") if "PSD" in Image.SAVE else b"8BPS\x00\x01", "PSD"),
    ],
    ids=["pdf", "svg", "ico", "psd"],
)
def test_other_formats_are_unsupported(data, name):
    with pytest.raises(UnsupportedImageError) as err:
        load_image(data)
    assert name in err.value.user_message


# ------------------------------------------------------------------------------------------- limits


def test_bytes_over_max_bytes(tmp_path):
    data = encode(quadrants(), "PNG")
    assert load_image(data, max_bytes=len(data)).size == (64, 48)
    with pytest.raises(ImageTooLargeError) as err:
        load_image(data, max_bytes=len(data) - 1)
    assert err.value.code == "too_large"
    assert (err.value.size_bytes, err.value.max_bytes) == (len(data), len(data) - 1)

    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"\0" * (3 * 2**20))
    with pytest.raises(ImageTooLargeError) as err:
        inspect_image(path, max_bytes=2 * 2**20)
    assert "2 MB" in err.value.user_message


def test_default_byte_limit_is_20_mb():
    with pytest.raises(ImageTooLargeError) as err:
        load_image(memoryview(bytes(20 * 2**20 + 1)))
    assert "20 MB" in err.value.user_message


def test_huge_declared_size_is_refused_by_pillows_bomb_check():
    data = with_huge_ihdr(encode(Image.new("RGB", (8, 8), RED), "PNG"), 100_000, 100_000)
    with pytest.raises(TooManyPixelsError) as err:
        load_image(data)
    assert err.value.code == "too_many_pixels"
    assert "megapixels" in err.value.user_message


def test_huge_declared_size_is_refused_before_decoding(monkeypatch):
    # Switch Pillow's own guard off: our header check alone must refuse it, without decoding.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)

    def no_decode(self):
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decode)
    data = with_huge_ihdr(encode(Image.new("RGB", (8, 8), RED), "PNG"), 100_000, 100_000)
    assert Image.open(io.BytesIO(data)).size == (100_000, 100_000)  # Pillow believes the header
    with pytest.raises(TooManyPixelsError) as err:
        inspect_image(data)
    assert (err.value.width, err.value.height) == (100_000, 100_000)


def test_max_pixels_argument():
    data = encode(Image.new("RGB", (100, 100), RED), "PNG")
    assert load_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(TooManyPixelsError) as err:
        load_image(data, max_pixels=9_999)
    assert err.value.max_pixels == 9_999


def test_pillows_bomb_warning_range_is_refused_too(monkeypatch):
    # Between MAX_IMAGE_PIXELS and twice that, Pillow only warns: we must still refuse.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    data = encode(Image.new("RGB", (120, 100), RED), "PNG")
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(TooManyPixelsError):
        load_image(data, max_pixels=10**9)


# --------------------------------------------------------------------------------------- info & misc


def test_inspect_image_info():
    data = encode(quadrants(), "PNG")
    info = inspect_image(data)
    assert info == ImageInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        width=64,
        height=48,
        format="PNG",
        mime="image/png",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.width = 1  # type: ignore[misc]


def test_loaded_image_is_independent_of_the_file():
    im = load_image(encode(quadrants(), "JPEG"))
    im2 = im.resize((8, 8))  # a closed lazy file would raise here
    assert im2.size == (8, 8)


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (NotAnImageError, "not_an_image"),
        (CorruptImageError, "corrupt"),
        (UnsupportedImageError, "unsupported"),
    ],
)
def test_error_classes(cls, code):
    err = cls("detail for logs")
    assert isinstance(err, ImageError) and isinstance(err, ValueError)
    assert err.code == code
    assert str(err) == "detail for logs"
    assert err.user_message and "detail" not in err.user_message


def test_sniff_kind():
    assert sniff_kind(encode(quadrants(), "JPEG")) == "jpeg"
    assert sniff_kind(encode(quadrants(), "PNG")) == "png"
    assert sniff_kind(encode(quadrants(), "GIF")) == "gif"
    assert sniff_kind(encode(quadrants(), "WEBP")) == "webp"
    assert sniff_kind(encode(quadrants(), "BMP")) == "bmp"
    assert sniff_kind(encode(quadrants(), "TIFF")) == "tiff"
    assert sniff_kind(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom") == "video"
    assert sniff_kind(b"BMW 320d for sale, one owner") is None
    assert sniff_kind(b"") is None


def test_module_imports_neither_torch_nor_numpy():
    code = (
        "import sys, captionbot.images as m; m.supported_formats(); "
        "bad = sorted(x for x in ('torch', 'numpy') if x in sys.modules); print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------- squash for the model


def test_squash_to_decodes_a_big_jpeg_at_reduced_scale_upright_and_like_a_full_decode():
    # 1600x800 photo stored sideways (orientation 6): left half red, right half blue, top rows green.
    im = Image.new("RGB", (1600, 800), RED)
    im.paste(BLUE, (800, 0, 1600, 800))
    im.paste(GREEN, (0, 0, 1600, 160))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(im, "JPEG", exif=exif.tobytes(), quality=95)

    opened = Image.open(io.BytesIO(data))
    opened.draft("RGB", (224, 224))
    assert opened.size == (800, 400), "decoded at 1/2 scale: the short side stays >= 224"

    out = load_image(data, squash_to=224)
    assert out.size == (224, 224) and out.mode == "RGB"
    assert_close(out.getpixel((50, 40)), RED)  # upright: red on top, blue below, green on the right edge
    assert_close(out.getpixel((50, 180)), BLUE)
    assert_close(out.getpixel((215, 40)), GREEN)
    full = load_image(data).resize((224, 224), Image.Resampling.BILINEAR, reducing_gap=3.0)
    diff = sum(abs(a - b) for a, b in zip(out.tobytes(), full.tobytes(), strict=True)) / len(full.tobytes())
    assert diff < 4, diff  # same picture as decoding everything, then resizing


def test_squash_to_keeps_every_check():
    data = encode(quadrants(640, 480), "JPEG", quality=90)
    with pytest.raises(CorruptImageError):
        load_image(data[: len(data) // 2], squash_to=224)
    assert load_image(encode(quadrants(), "PNG"), squash_to=224).size == (224, 224)


def test_fit_to_keeps_the_aspect_ratio_and_excludes_squash_to() -> None:
    from captionbot.images import load_image

    buf = io.BytesIO()
    Image.new("RGB", (400, 200), "red").save(buf, "JPEG")
    assert load_image(buf.getvalue(), fit_to=100).size == (100, 50)
    with pytest.raises(ValueError, match="exclude each other"):
        load_image(buf.getvalue(), fit_to=100, squash_to=100)
