"""`captionbot` command line. Heavy imports (torch) happen inside the commands that need them, so a
bot-only install (no torch) still runs `captionbot bot` and `captionbot db ...`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Describe photos in words: captioner, training, and the chat bots.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")

DEFAULT_DATA = "../shared/datasets/flickr8k"


def _need_model_extra() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        typer.echo("This command needs the model extra: pip install 'captionbot[model]'", err=True)
        raise typer.Exit(2) from None


@app.command()
def caption(
    photos: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, WebP, GIF, HEIC...)")],
    beam: Annotated[int, typer.Option(min=1, max=10, help="Beam size (1 = greedy)")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    model: Annotated[Path | None, typer.Option(help="Checkpoint file (default: the shipped model)")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
) -> None:
    """Caption photos: one line per photo."""
    _need_model_extra()
    from captionbot.images import ImageError, load_image
    from captioner.checkpoint import CheckpointError
    from captioner.inference import CaptionEngine

    try:
        engine = CaptionEngine.load(model, device=device)
    except CheckpointError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    failed = 0
    loaded: list[tuple[Path, object]] = []
    for photo in photos:
        try:
            loaded.append((photo, load_image(photo)))
        except (ImageError, OSError) as exc:
            failed += 1
            message = getattr(exc, "user_message", None) or str(exc)
            if as_json:
                typer.echo(json.dumps({"image": str(photo), "error": message}))
            else:
                typer.echo(f"{photo}: error: {message}", err=True)
    for start in range(0, len(loaded), batch_size):
        chunk = loaded[start : start + batch_size]
        results = engine.caption([im for _, im in chunk], beam_size=beam)
        for (photo, _), res in zip(chunk, results, strict=True):
            if as_json:
                row = {"image": str(photo), "caption": res.text, "confidence": round(res.confidence, 4)}
                typer.echo(json.dumps(row))
            elif len(photos) == 1:
                typer.echo(res.text)
            else:
                typer.echo(f"{photo}: {res.text}")
    if failed:
        raise typer.Exit(1)


@app.command()
def explain(
    photo: Path,
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("attention.png"),
    beam: Annotated[int, typer.Option(min=1, max=10)] = 3,
    model: Annotated[Path | None, typer.Option(help="Checkpoint file (default: the shipped model)")] = None,
) -> None:
    """Write a picture of the photo with the attention map of every generated word."""
    _need_model_extra()
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


@app.command()
def train(
    data: Annotated[str, typer.Option(help="Flickr8k folder, Karpathy .json or .jsonl")] = DEFAULT_DATA,
    out: Annotated[str, typer.Option(help="Run folder (checkpoints, curves.png, metrics.json)")] = "runs/flickr8k",
    encoder: Annotated[str, typer.Option(help="mobilenet_v2 or efficientnet_lite0")] = "mobilenet_v2",
    epochs: Annotated[int, typer.Option(help="Cross-entropy epochs at most")] = 20,
    scst_epochs: Annotated[int, typer.Option(help="Self-critical epochs after cross-entropy")] = 0,
    batch_images: Annotated[int, typer.Option()] = 32,
    lr: Annotated[float, typer.Option()] = 5e-4,
    patience: Annotated[int, typer.Option()] = 4,
    attention: Annotated[bool, typer.Option(help="--no-attention trains the plain CNN+LSTM baseline")] = True,
    hidden_dim: Annotated[int, typer.Option()] = 512,
    min_count: Annotated[int, typer.Option()] = 5,
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.pt when it exists")] = True,
    init_from: Annotated[
        Path | None, typer.Option(help="Fine-tune this checkpoint (e.g. on exported feedback JSONL)")
    ] = None,
    weights_dir: Annotated[str, typer.Option(help="Local encoder weights to seed torch's cache")] = "../shared/weights",
    device: Annotated[str, typer.Option()] = "auto",
) -> None:
    """Train the decoder on cached encoder features (then optionally SCST); keeps the best dev CIDEr-D."""
    _need_model_extra()
    from captioner.encoders import seed_torch_hub_cache
    from captioner.inference import pick_device
    from training.datasets import DatasetError
    from training.train import TrainConfig
    from training.train import train as run_training

    seed_torch_hub_cache(weights_dir)
    tc = TrainConfig(
        data=data, out=out, encoder=encoder, epochs=epochs, scst_epochs=scst_epochs, batch_images=batch_images,
        lr=lr, patience=patience, attention=attention, hidden_dim=hidden_dim, min_count=min_count, seed=seed,
        device=str(pick_device(device)), init_from=str(init_from) if init_from else None,
    )
    try:
        best = run_training(tc, resume=resume)
    except DatasetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"best checkpoint: {best}")


@app.command("eval")
def evaluate_cmd(
    model: Annotated[Path | None, typer.Option(help="Checkpoint (default: the shipped model)")] = None,
    data: Annotated[str, typer.Option(help="Flickr8k folder, Karpathy .json or .jsonl")] = DEFAULT_DATA,
    split: Annotated[str, typer.Option(help="train, dev or test")] = "test",
    beam: Annotated[int, typer.Option(min=1, max=10)] = 3,
    out: Annotated[Path | None, typer.Option(help="Write captions as JSON here")] = None,
    metrics_out: Annotated[Path | None, typer.Option(help="Write the metrics as JSON here")] = None,
    meteor: Annotated[bool, typer.Option(help="Score METEOR too (needs Java)")] = True,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    device: Annotated[str, typer.Option()] = "auto",
) -> None:
    """Caption a split end to end (photos through the checkpoint's own encoder) and print its metrics."""
    _need_model_extra()
    from training.datasets import DatasetError
    from training.evaluate import evaluate_checkpoint
    from training.metrics import format_table

    try:
        metrics, rows = evaluate_checkpoint(
            model, data, split, beam_size=beam, meteor=meteor, batch_size=batch_size, device=device
        )
    except DatasetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(format_table(metrics))
    if out:
        out.write_text(json.dumps(rows, indent=1))
        typer.echo(f"wrote {out}")
    if metrics_out:
        metrics_out.write_text(json.dumps(metrics, indent=1))


@app.command()
def export(
    checkpoint: Path,
    out: Annotated[Path, typer.Option(help="Where to write the small inference checkpoint")],
    version: Annotated[str, typer.Option(help="Model version name recorded in the file")] = "",
    metrics_json: Annotated[Path | None, typer.Option(help="Metrics to embed (JSON)")] = None,
) -> None:
    """Strip a training checkpoint to what inference needs, stored in float16."""
    _need_model_extra()
    from captioner.checkpoint import load_checkpoint, save_checkpoint

    model, vocab, payload = load_checkpoint(checkpoint)
    metrics = dict(payload.get("metrics", {}))
    if metrics_json:
        metrics.update(json.loads(metrics_json.read_text()))
    train_cfg = payload.get("extra", {}).get("train_config", {})
    train_cfg.pop("history", None)
    extra = {"version": version or out.stem, "train_config": train_cfg}
    save_checkpoint(out, model, vocab, metrics=metrics, extra=extra, half=True)
    typer.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to the configured database."""
    from captionbot.settings import Settings
    from captionbot.storage.db import upgrade

    settings = Settings()
    upgrade(settings.database_url)
    typer.echo("database schema is up to date")


# --- serving: `run`, `worker`, `bot` (queue/worker owner; the runtime is imported lazily) --------


@app.command()
def run() -> None:
    """Everything in one process: worker, chat bots with a token set, metrics (default: SQLite + memory queue)."""
    from captionbot.runtime import run_blocking
    from captionbot.settings import Settings

    _need_model_extra()
    raise typer.Exit(run_blocking(Settings(), "all"))


@app.command()
def worker() -> None:
    """Only the caption worker (needs a shared broker: CAPTIONBOT_BROKER_URL=redis://...)."""
    from captionbot.runtime import run_blocking
    from captionbot.settings import Settings

    _need_model_extra()
    raise typer.Exit(run_blocking(Settings(), "worker"))


@app.command()
def bot() -> None:
    """Only the chat bots and result delivery (needs a shared broker; no torch needed)."""
    from captionbot.runtime import run_blocking
    from captionbot.settings import Settings

    raise typer.Exit(run_blocking(Settings(), "bot"))


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
