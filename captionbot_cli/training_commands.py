"""`captionbot train | eval | export`: training and evaluation on local data (torch inside)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from captionbot_cli.common import DEFAULT_DATA, need_model_extra


def train(
    data: Annotated[str, typer.Option(help="Flickr8k folder, Karpathy .json or .jsonl")] = DEFAULT_DATA,
    out: Annotated[str, typer.Option(help="Run folder (checkpoints, curves.png, metrics.json)")] = "runs/flickr8k",
    encoder: Annotated[
        str, typer.Option(help="efficientnet_lite0 (default: best dev CIDEr-D per ms) or mobilenet_v2")
    ] = "efficientnet_lite0",
    epochs: Annotated[int, typer.Option(help="Cross-entropy epochs at most")] = 20,
    scst_epochs: Annotated[int, typer.Option(help="Self-critical epochs after cross-entropy")] = 0,
    batch_images: Annotated[int, typer.Option()] = 32,
    lr: Annotated[float, typer.Option()] = 2e-3,
    lr_decay: Annotated[float, typer.Option(help="Learning-rate factor per epoch")] = 0.85,
    scst_lr: Annotated[float, typer.Option()] = 5e-5,
    scst_evals_per_epoch: Annotated[int, typer.Option(help="Dev CIDEr-D checks per SCST epoch")] = 4,
    scst_dropout: Annotated[bool, typer.Option(help="Sample with dropout on during SCST")] = True,
    hflip: Annotated[bool, typer.Option(help="Augment with mirrored photos (left/right swapped)")] = True,
    finetune_encoder_from: Annotated[
        int, typer.Option(help="XE epoch from which the CNN trains too (0 = never; meant for a GPU)")
    ] = 0,
    encoder_lr: Annotated[float, typer.Option(help="Learning rate of the CNN when fine-tuned")] = 1e-4,
    threads: Annotated[int, typer.Option(help="torch CPU threads (0 = torch's default)")] = 0,
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
    need_model_extra()
    from captioner.encoders import seed_torch_hub_cache
    from captioner.inference import DeviceUnavailableError, pick_device
    from training.datasets import DatasetError
    from training.train import TrainConfig
    from training.train import train as run_training

    seed_torch_hub_cache(weights_dir)
    try:
        chosen = str(pick_device(device))
    except DeviceUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    tc = TrainConfig(
        data=data,
        out=out,
        encoder=encoder,
        epochs=epochs,
        scst_epochs=scst_epochs,
        batch_images=batch_images,
        lr=lr,
        lr_decay=lr_decay,
        scst_lr=scst_lr,
        threads=threads,
        patience=patience,
        attention=attention,
        hidden_dim=hidden_dim,
        min_count=min_count,
        seed=seed,
        scst_evals_per_epoch=scst_evals_per_epoch,
        hflip=hflip,
        scst_dropout=scst_dropout,
        finetune_encoder_from=finetune_encoder_from,
        encoder_lr=encoder_lr,
        device=chosen,
        init_from=str(init_from) if init_from else None,
    )
    try:
        best = run_training(tc, resume=resume)
    except DatasetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"best checkpoint: {best}")


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
    need_model_extra()
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


def export(
    checkpoint: Path,
    out: Annotated[Path, typer.Option(help="Where to write the small inference checkpoint")],
    version: Annotated[str, typer.Option(help="Model version name recorded in the file")] = "",
    metrics_json: Annotated[Path | None, typer.Option(help="Metrics to embed (JSON)")] = None,
) -> None:
    """Strip a training checkpoint to what inference needs, stored in float16."""
    need_model_extra()
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
