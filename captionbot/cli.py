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
    """Caption photos: one line per photo, phrased as the bots phrase it ("Probably ...", "I can't
    describe this photo well. It may show a cat." when the model is unsure)."""
    _need_model_extra()
    from captionbot.images import ImageError, load_image
    from captionbot.wording import describe
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
                row = {
                    "image": str(photo),
                    "caption": res.text,
                    "confidence": round(res.confidence, 4),
                    "band": res.band,
                    "hint": res.hint,
                    "labels": res.labels,
                }
                typer.echo(json.dumps(row))
                continue
            said = describe(res.text, band=res.band, hint=res.hint)  # as the bots say it
            typer.echo(said if len(photos) == 1 else f"{photo}: {said}")
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
    _need_model_extra()
    from captioner.encoders import seed_torch_hub_cache
    from captioner.inference import pick_device
    from training.datasets import DatasetError
    from training.train import TrainConfig
    from training.train import train as run_training

    seed_torch_hub_cache(weights_dir)
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
        device=str(pick_device(device)),
        init_from=str(init_from) if init_from else None,
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


# --- feedback loop: `feedback export`, `model register | promote | list` (training owner) --------
# Feedback becomes a JSONL dataset, `captionbot train --data feedback.jsonl --init-from current.pt`
# fine-tunes on it, and `model register` + `model promote` hand the result to running workers.

import asyncio  # noqa: E402  (stdlib only; the heavy imports stay inside the commands)
import contextlib  # noqa: E402
import hashlib  # noqa: E402
from collections.abc import AsyncIterator, Coroutine  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import TYPE_CHECKING, Any, TypeVar  # noqa: E402

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from captionbot.settings import Settings
    from captionbot.storage.models import ModelVersion

feedback_app = typer.Typer(help="People's ratings and corrections as training data.", no_args_is_help=True)
model_app = typer.Typer(help="Model versions: register checkpoints, promote one to the workers.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")
app.add_typer(model_app, name="model")

_T = TypeVar("_T")


def _run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run``, also when an event loop already runs here (tests): then on a thread's own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextlib.asynccontextmanager
async def _open_database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the configured database; exits 2 unless its schema is the one this code needs."""
    from captionbot.storage.db import SchemaOutdatedError, check_schema_current, create_engine, make_session_factory

    assert settings.database_url is not None  # Settings derives it from data_dir when unset
    engine = create_engine(settings.database_url)
    try:
        try:
            await check_schema_current(engine)
        except SchemaOutdatedError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


def _fail(message: str) -> typer.Exit:
    """Print ``error: message`` to stderr; ``raise _fail(...)`` ends the command with status 2."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@feedback_app.command("export")
def feedback_export(
    out: Annotated[Path, typer.Option(help="JSONL file to write (for `captionbot train --data`)")],
    min_rating: Annotated[int, typer.Option(help="Use uncorrected captions rated at least this")] = 1,
    dev_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Share of photos in the dev split (stable per photo)")
    ] = 0.1,
) -> None:
    """Write corrections and well-rated captions as a fine-tuning dataset (opted-out users left out)."""
    from captionbot.settings import Settings
    from captionbot.storage.imagestore import ImageStore
    from training.feedback import export_feedback

    settings = Settings()
    assert settings.image_store_dir is not None

    async def export() -> Any:
        async with _open_database(settings) as factory:
            return await export_feedback(
                factory, ImageStore(settings.image_store_dir), out, min_rating=min_rating, dev_fraction=dev_fraction
            )

    typer.echo(_run_async(export()).summary())


def _file_sha256(path: Path) -> str:
    """The file's sha256 (hashlib, not captioner.checkpoint: `promote` runs without torch)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@model_app.command("register")
def model_register(
    path: Annotated[Path, typer.Argument(help="Checkpoint file (best.pt of a run, or an exported .pt)")],
    name: Annotated[str | None, typer.Option(help="Version name (default: the checkpoint's own version)")] = None,
) -> None:
    """Record a checkpoint as a candidate version, after checking that it loads."""
    _need_model_extra()
    from captionbot.settings import Settings
    from captionbot.storage import queries as q
    from captioner.checkpoint import CheckpointError, load_checkpoint

    path = path.resolve()  # workers may run elsewhere: never store a path relative to this shell
    try:
        _, _, payload = load_checkpoint(path)
    except CheckpointError as exc:
        raise _fail(str(exc)) from None
    sha = _file_sha256(path)
    # Same default as CaptionEngine.version, so a worker that loads this file names it alike.
    name = name or payload.get("extra", {}).get("version") or f"{path.stem}-{sha[:12]}"
    metrics = dict(payload.get("metrics") or {})
    settings = Settings()

    async def register() -> ModelVersion:
        async with _open_database(settings) as factory, factory.begin() as session:
            try:
                return await q.register_model_version(session, name=name, path=str(path), sha256=sha, metrics=metrics)
            except ValueError as exc:
                raise _fail(f"{exc}; choose another --name") from None

    version = _run_async(register())
    typer.echo(f"registered {version.name} ({version.status}) sha256 {sha[:12]} at {path}")


async def _find_version(session: AsyncSession, target: str) -> ModelVersion | None:
    """The version named ``target``, else the newest one registered for the file at ``target``."""
    from sqlalchemy import select

    from captionbot.storage import queries as q
    from captionbot.storage.models import ModelVersion

    version = await q.get_model_version(session, name=target)
    if version is not None:
        return version
    sha = await asyncio.to_thread(_sha256_if_file, Path(target))
    if sha is not None:
        version = await session.scalar(
            select(ModelVersion).where(ModelVersion.sha256 == sha).order_by(ModelVersion.id.desc()).limit(1)
        )
    return version


def _sha256_if_file(path: Path) -> str | None:
    return _file_sha256(path) if path.is_file() else None


def _check_file_unchanged(version: ModelVersion) -> None:
    """Refuse to promote a version whose file is gone or was overwritten since it was registered."""
    path = Path(version.path)
    if not path.is_file():
        raise _fail(f"{version.name}: its checkpoint {path} is missing")
    if version.sha256 and _file_sha256(path) != version.sha256:
        raise _fail(f"{version.name}: {path} changed since it was registered; register it again under a new name")


@model_app.command("promote")
def model_promote(
    name_or_path: Annotated[str, typer.Argument(help="A registered version's name, or its checkpoint file")],
) -> None:
    """Make a registered version the one workers serve (they switch between batches)."""
    from sqlalchemy.exc import IntegrityError

    from captionbot.settings import Settings
    from captionbot.storage import queries as q

    settings = Settings()

    async def promote() -> tuple[str, str | None]:
        async with _open_database(settings) as factory, factory.begin() as session:
            version = await _find_version(session, name_or_path)
            if version is None:
                raise _fail(f"no registered model version {name_or_path!r}: run `captionbot model register PATH`")
            await asyncio.to_thread(_check_file_unchanged, version)
            previous = await q.current_model_version(session)
            await q.promote_model_version(session, model_version_id=version.id)
            return version.name, previous.name if previous and previous.id != version.id else None

    try:
        promoted, previous = _run_async(promote())
    except IntegrityError:  # the partial unique index: someone promoted another version at the same time
        raise _fail("another version was promoted at the same moment; check `captionbot model list`") from None
    was = f" (was {previous}, now retired)" if previous else ""
    typer.echo(f"promoted {promoted}{was}; workers switch to it before their next batch")


def _cider(metrics: dict[str, Any], split: str) -> float | None:
    """CIDEr-D of ``split`` from a checkpoint's embedded metrics, if recorded."""
    nested = metrics.get(split)
    if isinstance(nested, dict) and isinstance(nested.get("CIDEr-D"), int | float):
        return float(nested["CIDEr-D"])
    # `captionbot export --metrics-json` merges `captionbot eval`'s flat metrics (test split by default).
    if split == "test" and isinstance(metrics.get("CIDEr-D"), int | float):
        return float(metrics["CIDEr-D"])
    return None


@model_app.command("list")
def model_list() -> None:
    """Every registered model version, oldest first."""
    from rich.console import Console
    from rich.table import Table
    from sqlalchemy import select

    from captionbot.settings import Settings
    from captionbot.storage.models import ModelVersion

    settings = Settings()

    async def versions() -> list[ModelVersion]:
        async with _open_database(settings) as factory, factory() as session:
            return list(await session.scalars(select(ModelVersion).order_by(ModelVersion.id)))

    table = Table("name", "status", "promoted_at", "dev CIDEr-D", "test CIDEr-D", "path")
    for v in _run_async(versions()):
        dev, test = _cider(v.metrics or {}, "dev"), _cider(v.metrics or {}, "test")
        table.add_row(
            v.name,
            str(v.status),
            v.promoted_at.strftime("%Y-%m-%d %H:%M UTC") if v.promoted_at else "",
            "" if dev is None else f"{dev:.3f}",
            "" if test is None else f"{test:.3f}",
            v.path,
        )
    Console(width=200).print(table)


MAX_JUDGED_CAPTION = 500  # characters; longer is not a caption


def _judge_problem(caption: object) -> str | None:
    """Why a caption can't be judged, in one line, or None."""
    if not isinstance(caption, str) or not caption.strip():
        return "the caption is empty"
    if len(caption) > MAX_JUDGED_CAPTION:
        return f"the caption is too long ({len(caption):,} characters; at most {MAX_JUDGED_CAPTION})"
    return None


@app.command()
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
    _need_model_extra()
    from captionbot.images import ImageError, load_image
    from captioner.checkpoint import CheckpointError
    from captioner.inference import CaptionEngine

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
    except CheckpointError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    ready: list[tuple[dict, object]] = []
    for row in rows:
        if "error" in row:
            continue
        problem = _judge_problem(row.get("caption"))
        if problem is None and not isinstance(row.get("image"), str):
            problem = 'the line has no "image" path'
        if problem is None:
            try:
                ready.append((row, load_image(Path(row["image"]))))
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


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
