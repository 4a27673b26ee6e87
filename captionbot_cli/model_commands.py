"""`captionbot feedback export` and `captionbot model register | promote | list`.

Feedback becomes a JSONL dataset, `captionbot train --data feedback.jsonl --init-from current.pt`
fine-tunes on it, and `model register` + `model promote` hand the result to running workers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from captionbot_cli.common import fail, need_model_extra, open_database, run_async

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from captionbot.service.learning_results import VersionRow
    from captionbot.storage.models import ModelVersion

feedback_app = typer.Typer(help="People's ratings and corrections as training data.", no_args_is_help=True)
model_app = typer.Typer(help="Model versions: register checkpoints, promote one to the workers.", no_args_is_help=True)


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
        async with open_database(settings) as factory:
            return await export_feedback(
                factory, ImageStore(settings.photos_dir), out, min_rating=min_rating, dev_fraction=dev_fraction
            )

    typer.echo(run_async(export()).summary())


@model_app.command("register")
def model_register(
    path: Annotated[Path, typer.Argument(help="Checkpoint file (best.pt of a run, or an exported .pt)")],
    name: Annotated[str | None, typer.Option(help="Version name (default: the checkpoint's own version)")] = None,
) -> None:
    """Record a checkpoint as a candidate version, after checking that it loads."""
    need_model_extra()
    from captionbot.settings import Settings
    from captionbot.storage import model_versions
    from captioner.checkpoint import CheckpointError, file_sha256, load_checkpoint

    path = path.resolve()  # workers may run elsewhere: never store a path relative to this shell
    try:
        _, _, payload = load_checkpoint(path)
    except CheckpointError as exc:
        raise fail(str(exc)) from None
    sha = file_sha256(path)
    # Same default as CaptionEngine.version, so a worker that loads this file names it alike.
    name = name or payload.get("extra", {}).get("version") or f"{path.stem}-{sha[:12]}"
    metrics = dict(payload.get("metrics") or {})
    settings = Settings()

    async def register() -> ModelVersion:
        async with open_database(settings) as factory, factory.begin() as session:
            try:
                return await model_versions.register_model_version(
                    session, name=name, path=str(path), sha256=sha, metrics=metrics
                )
            except ValueError as exc:
                raise fail(f"{exc}; choose another --name") from None

    version = run_async(register())
    typer.echo(f"registered {version.name} ({version.status}) sha256 {sha[:12]} at {path}")


async def _find_version(session: AsyncSession, target: str) -> ModelVersion | None:
    """The version named ``target``, else the newest one registered for the file at ``target``."""
    from sqlalchemy import select

    from captionbot.storage import model_versions
    from captionbot.storage.models import ModelVersion

    version = await model_versions.get_model_version(session, name=target)
    if version is not None:
        return version
    sha = await asyncio.to_thread(model_versions.checkpoint_sha256, target)
    if sha is not None:
        version = await session.scalar(
            select(ModelVersion).where(ModelVersion.sha256 == sha).order_by(ModelVersion.id.desc()).limit(1)
        )
    return version


def _check_file_unchanged(version: ModelVersion) -> None:
    """Refuse to promote a version whose file is gone or was overwritten since it was registered."""
    from captionbot.storage.model_versions import checkpoint_sha256

    path = Path(version.path)
    sha = checkpoint_sha256(path)
    if sha is None:
        raise fail(f"{version.name}: its checkpoint {path} is missing")
    if version.sha256 and sha != version.sha256:
        raise fail(f"{version.name}: {path} changed since it was registered; register it again under a new name")


@model_app.command("promote")
def model_promote(
    name_or_path: Annotated[str, typer.Argument(help="A registered version's name, or its checkpoint file")],
) -> None:
    """Make a registered version the one workers serve (they switch between batches)."""
    from sqlalchemy.exc import IntegrityError

    from captionbot.settings import Settings
    from captionbot.storage import model_versions

    settings = Settings()

    async def promote() -> tuple[str, str | None]:
        async with open_database(settings) as factory, factory.begin() as session:
            version = await _find_version(session, name_or_path)
            if version is None:
                raise fail(f"no registered model version {name_or_path!r}: run `captionbot model register PATH`")
            await asyncio.to_thread(_check_file_unchanged, version)
            previous = await model_versions.current_model_version(session)
            await model_versions.promote_model_version(session, model_version_id=version.id)
            return version.name, previous.name if previous and previous.id != version.id else None

    try:
        promoted, previous = run_async(promote())
    except IntegrityError:  # the partial unique index: someone promoted another version at the same time
        raise fail("another version was promoted at the same moment; check `captionbot model list`") from None
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
    """Every registered model version, oldest first, with the learning round that made it."""
    from rich.console import Console
    from rich.table import Table

    from captionbot.service import LearningService
    from captionbot.settings import Settings
    from captionbot.storage.imagestore import ImageStore

    settings = Settings()

    async def versions() -> list[VersionRow]:
        async with open_database(settings) as factory:
            return await LearningService(settings, factory, ImageStore(settings.photos_dir)).model_versions()

    table = Table("name", "status", "serving since", "dev CIDEr-D", "test CIDEr-D", "round", "decision", "path")
    for v in run_async(versions()):
        dev, test = _cider(v.metrics or {}, "dev"), _cider(v.metrics or {}, "test")
        serving = v.status == "promoted"
        table.add_row(
            v.name,
            "serving" if serving else str(v.status),
            v.promoted_at.strftime("%Y-%m-%d %H:%M UTC") if serving and v.promoted_at else "",
            "" if dev is None else f"{dev:.3f}",
            "" if test is None else f"{test:.3f}",
            "" if v.round_number is None else f"{v.round_number} {v.round_status or ''}".strip(),
            _short(v.round_decision or ""),
            v.path,
        )
    Console(width=240).print(table)


def _short(text: str, limit: int = 60) -> str:
    """One line of a round's decision (the full text: `captionbot learn` output, round reports)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


MAX_JUDGED_CAPTION = 500  # characters; longer is not a caption
