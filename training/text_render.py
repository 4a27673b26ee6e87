"""Text drawn onto photos, with its transcription: test data for reading text in photos
(benchmarks/ocr.py) and training data for the "is there text?" probe (training/text_probe.py).

Three kinds, all deterministic for a given ``random.Random``:

- :func:`render_sign`: 1-3 lines of signs, menu lines and numbers, 18-64 px, in DejaVu, Liberation
  or FreeFont faces (Debian's fonts-dejavu-core, fonts-liberation, fonts-freefont-ttf), rotated
  0/±5/±15 degrees, on a box or straight on the photo. ``clean`` = horizontal, on a box, >= 24 px.
- :func:`render_meme`: a white line with a black outline at the top and/or bottom of the photo.
- :func:`render_screenshot`: a screenshot-like page of short lines on a plain background.

Each returns a :class:`RenderedText`: the picture, the reference text (lines in reading order,
joined by spaces) and the boxes the text was drawn in (to score only what was drawn, since
photos can carry text of their own).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/truetype/liberation"),
    Path("/usr/share/fonts/truetype/freefont"),
)
FONT_NAMES = (
    "DejaVuSans DejaVuSans-Bold DejaVuSerif DejaVuSansMono LiberationSans-Regular LiberationSans-Bold"
    " LiberationSerif-Regular LiberationSansNarrow-Regular LiberationMono-Regular FreeSans FreeSansBold"
    " FreeSerif FreeMono"
).split()
INSTALL_FONTS = "apt-get install -y fonts-dejavu-core fonts-liberation fonts-freefont-ttf"

PHRASES = (
    "open daily|no parking|exit|fresh coffee|pizza and pasta|today only|sale 50 off|welcome home|"
    "bus stop|main street|keep out|hot soup|cold drinks|free wifi|closed on sunday|push|pull|"
    "fish and chips|city centre|happy birthday|tea 2.50|burger 7.95|salad 6|platform 4|gate 12|room 305|"
    "call 555 0142|since 1987|best in town|watch your step|menu|breakfast served all day|the old bakery|"
    "north station|lunch special|please wait here|danger|slow down|green market|park entrance|book shop|"
    "open 9 to 5|hotel|pharmacy|library"
).split("|")
MEME_LINES = (
    "when the wifi drops|me on monday morning|nobody asked|this is fine|one does not simply|"
    "not sure if serious|i have no idea what i am doing|so much win|that escalated quickly|"
    "keep calm and carry on|why are you like this|best day ever"
).split("|")
SCREEN_LINES = (
    "Are you coming to the meeting at 3?|Yes, I will be there in ten minutes|Your order has shipped|"
    "Battery low: 12 percent remaining|Meeting moved to room 4B|Dinner is at 7 tonight|"
    "Reminder: bring your ticket|Flight BA 286 is now boarding|Thanks for the photos!|"
    "Download complete|Wrong password, try again|New message from Sam|The train is delayed by 20 minutes|"
    "Happy new year to all of you|Please update your address"
).split("|")
COLOURS = ((255, 255, 255), (0, 0, 0), (220, 30, 30), (250, 220, 40), (30, 60, 200), (20, 140, 60))

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the picture's pixels


@dataclass(frozen=True)
class RenderedText:
    image: Image.Image
    text: str  # what was drawn, lines in reading order joined by single spaces
    boxes: tuple[Box, ...]  # where it was drawn


def font_files() -> list[Path]:
    """The TrueType faces found; RuntimeError (with the apt command) when there are none."""
    found = [d / f"{name}.ttf" for d in FONT_DIRS for name in FONT_NAMES if (d / f"{name}.ttf").is_file()]
    if not found:
        raise RuntimeError(f"no TrueType fonts found: {INSTALL_FONTS}")
    return found


def _styled(line: str, rng: random.Random) -> str:
    return line.upper() if rng.random() < 0.3 else line.capitalize() if rng.random() < 0.5 else line


def render_sign(photo: Image.Image, rng: random.Random, fonts: list[Path], *, clean: bool) -> RenderedText:
    """1-3 lines somewhere on a copy of the photo (see the module's docstring for clean/hard)."""
    lines = [_styled(rng.choice(PHRASES), rng) for _ in range(rng.randint(1, 3))]
    size = rng.choice([24, 28, 32, 40, 48, 64] if clean else [18, 20, 24, 32, 40, 48, 64])
    angle = 0 if clean else rng.choice([0, 5, -5, 15, -15])
    box = clean or rng.random() < 0.4
    if not clean and angle == 0 and box and size >= 24:  # keep the hard set hard
        box = False
    fg = rng.choice(COLOURS)
    img = photo.convert("RGB")  # a copy
    while True:
        font = ImageFont.truetype(str(rng.choice(fonts)), size)
        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        _, _, right, bottom = probe.multiline_textbbox((0, 0), "\n".join(lines), font=font, spacing=size // 4)
        pad = size // 3
        w, h = int(right) + 2 * pad, int(bottom) + 2 * pad
        if (w < img.width * 0.95 and h < img.height * 0.9) or size <= 18:
            break
        size = max(18, int(size * 0.8))
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if box:
        bg = (20, 20, 20) if sum(fg) > 380 else (245, 245, 240)
        draw.rectangle((0, 0, w, h), fill=bg + (235,))
    draw.multiline_text((pad, pad), "\n".join(lines), font=font, fill=fg + (255,), spacing=size // 4)
    if angle:
        layer = layer.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    x = rng.randrange(max(1, img.width - layer.width))
    y = rng.randrange(max(1, img.height - layer.height))
    img.paste(layer, (x, y), layer)
    return RenderedText(img, " ".join(lines), ((x, y, x + layer.width, y + layer.height),))


def render_meme(photo: Image.Image, rng: random.Random, fonts: list[Path]) -> RenderedText:
    """White text with a black outline across the top, the bottom, or both."""
    img = photo.convert("RGB")
    draw = ImageDraw.Draw(img)
    bold = [f for f in fonts if "Bold" in f.name] or fonts
    places = rng.choice([("top",), ("bottom",), ("top", "bottom")])
    texts, boxes = [], []
    for place in places:
        line = rng.choice(MEME_LINES).upper()
        size = max(16, img.height // rng.choice([8, 10, 12]))
        font = ImageFont.truetype(str(rng.choice(bold)), size)
        while draw.textlength(line, font=font) > img.width * 0.94 and size > 16:
            size = int(size * 0.85)
            font = ImageFont.truetype(str(rng.choice(bold)), size)
        width = int(draw.textlength(line, font=font))
        x = max(0, (img.width - width) // 2)
        y = size // 4 if place == "top" else img.height - size - size // 2
        stroke = max(1, size // 15)
        draw.text((x, y), line, font=font, fill=(255, 255, 255), stroke_width=stroke, stroke_fill=(0, 0, 0))
        left, top, right, bottom = draw.textbbox((x, y), line, font=font, stroke_width=stroke)
        texts.append(line)
        boxes.append((int(left), int(top), int(right), int(bottom)))
    return RenderedText(img, " ".join(texts), tuple(boxes))


def render_screenshot(rng: random.Random, fonts: list[Path], size: tuple[int, int] = (480, 640)) -> RenderedText:
    """A phone-screen-like picture: 3-6 short lines, dark on light or light on dark."""
    dark = rng.random() < 0.3
    img = Image.new("RGB", size, (30, 30, 34) if dark else (rng.randint(235, 255),) * 3)
    draw = ImageDraw.Draw(img)
    fg = (235, 235, 235) if dark else (20, 20, 20)
    faces = [f for f in fonts if "Mono" not in f.name] or fonts
    font = ImageFont.truetype(str(rng.choice(faces)), rng.choice([18, 20, 22, 26]))
    lines, boxes = [], []
    y = rng.randint(20, 60)
    for _ in range(rng.randint(3, 6)):
        line = rng.choice(SCREEN_LINES)
        while draw.textlength(line, font=font) > size[0] - 40:
            line = line.rsplit(" ", 1)[0]
        x = 20 if rng.random() < 0.6 else size[0] - 20 - int(draw.textlength(line, font=font))
        draw.text((x, y), line, font=font, fill=fg)
        left, top, right, bottom = draw.textbbox((x, y), line, font=font)
        lines.append(line)
        boxes.append((int(left), int(top), int(right), int(bottom)))
        y = int(bottom) + rng.randint(18, 50)
        if y > size[1] - 40:
            break
    return RenderedText(img, " ".join(lines), tuple(boxes))


def plain_backgrounds(n: int, rng: random.Random, size: tuple[int, int] = (640, 480)) -> list[Image.Image]:
    """Smooth random gradients, photo-sized: backgrounds when no photos are at hand (tests)."""
    out = []
    w, h = size
    for _ in range(n):
        a = [rng.randrange(256) for _ in range(3)]
        b = [rng.randrange(256) for _ in range(3)]
        ramp = Image.linear_gradient("L").resize((w, h)).rotate(rng.choice([0, 90]))
        out.append(Image.composite(Image.new("RGB", (w, h), tuple(b)), Image.new("RGB", (w, h), tuple(a)), ramp))
    return out
