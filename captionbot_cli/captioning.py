"""`captionbot caption | explain | judge`: the model on local photos (torch is imported inside)."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from captionbot_cli.common import need_model_extra

if TYPE_CHECKING:
    from PIL import Image as PILImage


class TextCheck(StrEnum):
    """Which photos the text detector looks at in `captionbot caption`."""

    ALL = "all"
    PROBE = "probe"


def caption(
    photos: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, WebP, GIF, HEIC...)")],
    beam: Annotated[int, typer.Option(min=1, max=10, help="Beam size (1 = greedy)")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    model: Annotated[Path | None, typer.Option(help="Checkpoint file (default: the shipped model)")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    read_text: Annotated[
        bool, typer.Option("--read-text/--no-read-text", help="Read text in the photos too (needs the ocr extra)")
    ] = True,
    text_check: Annotated[
        TextCheck,
        typer.Option(
            help="all: the text detector looks at every photo (finds more small text); probe: only where the"
            " caption model's text probe is unsure, as the bots do by default",
        ),
    ] = TextCheck.ALL,
) -> None:
    """Caption photos: one line per photo, phrased as the bots phrase it ("Probably ...", "I can't
    describe this photo well. It may show a cat." when the model is unsure), then the text read in
    the photo, if any. --json lines carry it as "text" (lines joined by newlines, or null)."""
    need_model_extra()
    from captionbot.images import ImageError, load_image
    from captionbot.texts import describe, with_photo_text
    from captioner.checkpoint import CheckpointError
    from captioner.inference import CaptionEngine, DeviceUnavailableError
    from captioner.ocr import TextReader, photo_text, plan, read_photo_text

    try:
        engine = CaptionEngine.load(model, device=device)
    except (CheckpointError, DeviceUnavailableError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    reader = None
    if read_text:
        try:
            reader = TextReader(threads=os.cpu_count() or 1)
        except Exception as exc:  # not installed: say how to get it, caption anyway
            typer.echo(f"note: not reading text in photos: {exc}", err=True)
    failed = 0
    # Photo by photo in input order, captioned in batches: every line comes out in the order given.
    for start in range(0, len(photos), batch_size):
        loaded: list[tuple[Path, PILImage.Image | None, str | None]] = []
        for photo in photos[start : start + batch_size]:
            try:
                loaded.append((photo, load_image(photo), None))
            except FileNotFoundError:
                failed += 1
                loaded.append((photo, None, "no such file"))
            except (ImageError, OSError) as exc:
                failed += 1
                loaded.append((photo, None, getattr(exc, "user_message", None) or str(exc)))
        images = [im for _, im, _ in loaded if im is not None]
        results = iter(engine.caption(images, beam_size=beam) if images else [])
        for photo, image, error in loaded:
            if image is None:
                if as_json:
                    typer.echo(json.dumps({"image": str(photo), "error": error}))
                else:
                    typer.echo(f"{photo}: error: {error}", err=True)
                continue
            res = next(results)
            text = None
            if reader is not None:
                likely = plan(engine.text_verdict(res), check_all=text_check is TextCheck.ALL)
                text = photo_text(read_photo_text(reader, image, likely=likely))
            if as_json:
                row = {
                    "image": str(photo),
                    "caption": res.text,
                    "confidence": round(res.confidence, 4),
                    "band": res.band,
                    "hint": res.hint,
                    "labels": res.labels,
                    "text": text,
                }
                typer.echo(json.dumps(row))
                continue
            said = describe(res.text, band=res.band, hint=res.hint)  # as the bots say it
            said, _ = with_photo_text(said, text, limit=1 << 20)
            typer.echo(said if len(photos) == 1 else f"{photo}: {said}")
    if failed:
        raise typer.Exit(1)


def explain(
    photo: Path,
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("attention.png"),
    beam: Annotated[int, typer.Option(min=1, max=10)] = 3,
    model: Annotated[Path | None, typer.Option(help="Checkpoint file (default: the shipped model)")] = None,
) -> None:
    """Write a picture of the photo with the attention map of every generated word."""
    need_model_extra()
    from captionbot.images import ImageError, load_image
    from captioner.explain import attention_figure
    from captioner.inference import CaptionEngine

    try:
        image = load_image(photo)
    except (ImageError, OSError) as exc:
        typer.echo(f"{photo}: error: {getattr(exc, 'user_message', None) or exc}", err=True)
        raise typer.Exit(1) from None
    engine = CaptionEngine.load(model)
    [res] = engine.caption([image], beam_size=beam, with_attention=True)
    attention_figure(image, res, out)
    typer.echo(f"{res.text}\nwrote {out}")


MAX_JUDGED_CAPTION = 500  # characters; longer is not a caption


def _judge_problem(caption: object) -> str | None:
    """Why a caption can't be judged, in one line, or None."""
    if not isinstance(caption, str) or not caption.strip():
        return "the caption is empty"
    if len(caption) > MAX_JUDGED_CAPTION:
        return f"the caption is too long ({len(caption):,} characters; at most {MAX_JUDGED_CAPTION})"
    return None


def judge(
    photo: Annotated[Path | None, typer.Argument(help="The photo (leave out with --pairs)")] = None,
    text: Annotated[str | None, typer.Argument(metavar="CAPTION", help="The caption to judge")] = None,
    pairs: Annotated[
        Path | None, typer.Option(help='JSONL file of {"image": path, "caption": text} lines ("-" = stdin)')
    ] = None,
    model: Annotated[Path | None, typer.Option(help="Checkpoint file (default: the shipped model)")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
) -> None:
    """How likely a person accepts a caption for a photo (0..1): the score the bots give their own
    captions. With --pairs, the input lines come back in order with "confidence" (or "error") added."""
    if (pairs is None) == (photo is None or text is None):
        typer.echo('error: give PHOTO "CAPTION", or --pairs FILE.jsonl', err=True)
        raise typer.Exit(2)
    need_model_extra()
    from captionbot.images import ImageError, load_image
    from captioner.checkpoint import CheckpointError
    from captioner.inference import CaptionEngine, DeviceUnavailableError

    if pairs is None:
        rows = [{"image": str(photo), "caption": text}]
    else:
        try:
            lines = (sys.stdin.read() if str(pairs) == "-" else pairs.read_text(encoding="utf-8")).splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            typer.echo(f"error: can't read {pairs}: {getattr(exc, 'strerror', None) or exc}", err=True)
            raise typer.Exit(2) from None
        rows = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = {"line": n, "error": f"line {n} is not JSON"}
            if not isinstance(row, dict):
                row = {"line": n, "error": f'line {n} is not a {{"image", "caption"}} object'}
            rows.append(row)
    try:
        engine = CaptionEngine.load(model, device=device)
    except (CheckpointError, DeviceUnavailableError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    ready: list[tuple[dict[str, Any], PILImage.Image]] = []
    for row in rows:
        if "error" in row:
            continue
        problem = _judge_problem(row.get("caption"))
        if problem is None and not isinstance(row.get("image"), str):
            problem = 'the line has no "image" path'
        if problem is None:
            try:
                ready.append((row, load_image(Path(str(row["image"])))))
            except FileNotFoundError:
                problem = f"no photo at {row['image']}"
            except (ImageError, OSError) as exc:
                problem = f"{row['image']}: {getattr(exc, 'user_message', None) or exc}"
        if problem is not None:
            row["error"] = problem
    for start in range(0, len(ready), batch_size):
        chunk = ready[start : start + batch_size]
        scores = engine.judge([im for _, im in chunk], [r["caption"] for r, _ in chunk])
        for (row, _), score in zip(chunk, scores, strict=True):
            row["confidence"] = round(score, 4)
    failed = sum("error" in r for r in rows)
    if pairs is None:
        [row] = rows
        if "error" in row:
            typer.echo(f"error: {row['error']}", err=True)
        else:
            typer.echo(f"{row['confidence']:.3f}")
    else:
        for row in rows:
            typer.echo(json.dumps(row))
    if failed:
        raise typer.Exit(1)
