"""Recognising a file's kind from its first bytes, without Pillow (which is too trusting for this:
it tries any file starting with "BM" as a BMP)."""

from __future__ import annotations

import struct

__all__ = ["sniff_kind"]

_DIB_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)


def sniff_kind(data: bytes) -> str | None:
    """Guess a file's kind from its first bytes, without Pillow: "jpeg", "png", "gif", "webp", "bmp",
    "tiff", "heif", "avif", or a kind we refuse ("pdf", "eps", "psd", "svg", "ico", "jpeg2000", "jxl",
    "qoi", "video"); None when nothing matches. Cheap, and a hint only: it does not validate the file.
    """
    head = bytes(data[:1024])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    # "BM" alone is too weak (a text file can start with it): also require a known DIB header size.
    if head[:2] == b"BM" and len(head) >= 18 and struct.unpack("<I", head[14:18])[0] in _DIB_HEADER_SIZES:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[4:8] == b"ftyp":
        return _sniff_isobmff(head)
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "eps"
    if head.startswith(b"8BPS"):
        return "psd"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "jpeg2000"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "jxl"
    if head.startswith(b"qoif"):
        return "qoi"
    if head.startswith(b"\x00\x00\x01\x00") and len(head) >= 6 and head[4:6] != b"\x00\x00":
        return "ico"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in text:
        return "svg"
    return None


def _sniff_isobmff(head: bytes) -> str:
    """HEIF, AVIF and MP4/MOV all start with an ISO-BMFF 'ftyp' box: tell them apart by its brands."""
    box_size = struct.unpack(">I", head[:4])[0]
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    if major in (b"avif", b"avis"):
        return "avif"
    if major in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"):
        return "heif"
    if major in (b"mif1", b"msf1"):
        return "avif" if compatible & {b"avif", b"avis"} else "heif"
    return "video"
