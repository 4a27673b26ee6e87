"""Learning from feedback, operator side: `captionbot learn | learner`, `model rollback | report`,
`feedback review`. main.py registers them; the round itself lives in training.learning.round.

Nothing heavy is imported here: torch comes in with run_round, inside the commands that run one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from captionbot_cli.common import fail, need_model_extra, open_database, run_async

if TYPE_CHECKING:
    from captionbot.service.learning import LearningService
    from captionbot.settings import Settings

log = logging.getLogger("captionbot.learner")
BUSY_EXIT = 3  # another round holds the lease: try later (not a configuration problem)

_T = TypeVar("_T")


def _with_service(settings: Settings, use: Callable[[LearningService], Awaitable[_T]]) -> _T:
    """Open the database (exit 2 on an old schema), build the service, run ``use`` on it."""
    from captionbot.service import LearningService
    from captionbot.storage.imagestore import ImageStore

    async def go() -> _T:
        async with open_database(settings) as factory:
            return await use(LearningService(settings, factory, ImageStore(settings.photos_dir)))

    return run_async(go())


# --- rounds -------------------------------------------------------------------------------------


def learn(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, only the report")] = False,
) -> None:
    """Run one learning round now: collect feedback, fine-tune, and promote the result only if it is better."""
    need_model_extra()
    from captionbot.service.learning_results import RoundBusyError
    from captionbot.settings import Settings
    from captioner.checkpoint import CheckpointError
    from training.datasets import DatasetError
    from training.learning.round import RoundOutcome, run_round
    from training.learning.schedule import call_round

    settings = Settings()

    async def one_round(service: LearningService) -> RoundOutcome:
        outcome: RoundOutcome = await call_round(run_round, settings, service, progress=not quiet)
        return outcome

    try:
        outcome = _with_service(settings, one_round)
    except RoundBusyError as exc:
        typer.echo(f"another round is running since {exc.started_at:%Y-%m-%d %H:%M} UTC on {exc.holder}; try later")
        raise typer.Exit(BUSY_EXIT) from None
    except (DatasetError, CheckpointError, OSError) as exc:  # a setting points at something unusable
        raise fail(f"the learning round failed and was recorded as failed: {exc}") from None
    typer.echo(outcome.report)


def learner() -> None:
    """Keep running: start a learning round whenever one is due (CAPTIONBOT_LEARN_EVERY_*), until stopped."""
    need_model_extra()
    from captionbot.settings import Settings
    from captionbot_cli.runtime import configure_logging
    from training.learning.round import run_round
    from training.learning.schedule import learner_loop

    settings = Settings()
    configure_logging(settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the schema check's chatter

    async def serve(service: LearningService) -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        log.info(
            "learner running: a round every %s new feedback items or %s h with new feedback; checking every %ss",
            settings.learn_every_items or "(off)",
            settings.learn_every_hours or "(off)",
            settings.learn_check_s,
        )
        cut_short = await learner_loop(settings, service, run_round=run_round, stop=stop)
        if cut_short:  # a round's thread cannot be interrupted, and asyncio.run would wait for it
            log.info("learner stopped (the round in progress was given up)")
            logging.shutdown()
            os._exit(0)

    _with_service(settings, serve)
    log.info("learner stopped")


# --- models -------------------------------------------------------------------------------------


def model_rollback() -> None:
    """Serve the version that served before the current one again (the current one is retired)."""
    from captionbot.service.learning_results import ModelRef, NothingToRollBackError
    from captionbot.settings import Settings

    async def rollback(service: LearningService) -> tuple[ModelRef, ModelRef]:
        return await service.rollback()

    try:
        was, now = _with_service(Settings(), rollback)
    except NothingToRollBackError as exc:
        raise fail(f"nothing to roll back to ({exc})" if str(exc) else "nothing to roll back to") from None
    typer.echo(f"serving {now.name} again (was {was.name}); workers switch to it before their next batch")


def model_report(
    plot: Annotated[
        Path | None, typer.Option(help="PNG to write (default: DATA_DIR/learning/model-report.png)")
    ] = None,
) -> None:
    """How people judged each model version: ratings and corrections per version, as a table and a picture."""
    from rich.console import Console
    from rich.table import Table

    from captionbot.service.learning_results import ModelUsage
    from captionbot.settings import Settings

    settings = Settings()

    async def report(service: LearningService) -> list[ModelUsage]:
        return await service.model_report()

    usages = _with_service(settings, report)
    table = Table("version", "status", "captions", "rated", "mean rating", "corrections", "correction rate")
    for u in usages:
        table.add_row(
            u.name,
            "serving" if u.status == "promoted" else u.status,
            str(u.captions),
            str(u.rated),
            "" if u.mean_rating is None else f"{u.mean_rating:+.2f}",
            str(u.corrections),
            "" if u.correction_rate is None else f"{100 * u.correction_rate:.1f}%",
        )
    Console(width=160).print(table)
    typer.echo("mean rating: -1 (all bad) .. +1 (all good); correction rate: share of captions people corrected")
    try:
        from training.learning.report_plot import plot_model_report
    except ImportError:  # a bot-only install: no matplotlib
        typer.echo("(no picture: it needs the model extra, pip install 'captionbot[model]')")
        return
    typer.echo(f"picture: {plot_model_report(usages, plot or settings.learning_dir / 'model-report.png')}")


# --- moderation ---------------------------------------------------------------------------------


def feedback_review(
    approve: Annotated[
        list[int] | None, typer.Option(help="Feedback id whose correction may train (repeatable)")
    ] = None,
    reject: Annotated[
        list[int] | None, typer.Option(help="Feedback id whose correction must not train (repeatable)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most corrections listed")] = 50,
) -> None:
    """List corrections waiting for a moderator, or approve / reject them by id."""
    from captionbot.service.learning_results import ReviewItem
    from captionbot.settings import Settings

    settings = Settings()
    if approve or reject:
        both = set(approve or ()) & set(reject or ())
        if both:
            raise fail(f"both approved and rejected: {', '.join(map(str, sorted(both)))}")

        async def decide(service: LearningService) -> tuple[int, int]:
            approved = await service.review(list(approve), approve=True) if approve else 0
            rejected = await service.review(list(reject), approve=False) if reject else 0
            return approved, rejected

        approved, rejected = _with_service(settings, decide)
        typer.echo(f"approved {approved}, rejected {rejected} correction(s)")
        return

    async def waiting(service: LearningService) -> list[ReviewItem]:
        return await service.corrections_to_review(limit=limit)

    items = _with_service(settings, waiting)
    if not items:
        typer.echo("no corrections waiting for review")
        return
    for item in items:
        typer.echo(f"{item.feedback_id:>6}  {item.caption_text!r} -> {item.correction!r}")
    note = "" if settings.learn_require_review else " (CAPTIONBOT_LEARN_REQUIRE_REVIEW is off: they train anyway)"
    typer.echo(f"{len(items)} waiting{note}; decide with --approve ID / --reject ID")
