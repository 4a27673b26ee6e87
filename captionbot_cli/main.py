"""The `captionbot` command line: one Typer app wiring every command module.

Heavy imports (torch) happen inside the commands that need them, so a bot-only install (no torch)
still runs `captionbot bot` and `captionbot db ...`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from captionbot_cli import captioning, doctor, learning_commands, model_commands, training_commands
from captionbot_cli.common import fail, need_model_extra

app = typer.Typer(help="Describe photos in words: captioner, training, and the chat bots.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(model_commands.feedback_app, name="feedback")
app.add_typer(model_commands.model_app, name="model")
app.command()(captioning.caption)
app.command()(captioning.explain)
app.command()(captioning.judge)
app.command()(training_commands.train)
app.command("eval")(training_commands.evaluate_cmd)
app.command()(training_commands.export)
app.command()(learning_commands.learn)
app.command()(learning_commands.learner)
app.command()(doctor.doctor)
model_commands.model_app.command("rollback")(learning_commands.model_rollback)
model_commands.model_app.command("report")(learning_commands.model_report)
model_commands.feedback_app.command("review")(learning_commands.feedback_review)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to the configured database."""
    import asyncio

    from captionbot.settings import Settings
    from captionbot.storage.db import upgrade_reporting

    settings = Settings()
    before, after = asyncio.run(upgrade_reporting(settings.db_url))
    if before == after:
        typer.echo(f"database schema already at revision {after} (the latest): nothing to apply")
    else:
        typer.echo(f"database schema upgraded from revision {before or 'none (empty database)'} to {after}")


# --- serving: `run`, `worker`, `bot` (queue/worker owner; the runtime is imported lazily) --------


@app.command()
def run() -> None:
    """Everything in one process: worker, chat bots with a token set, metrics (default: SQLite + memory queue)."""
    from captionbot.settings import Settings
    from captionbot_cli.runtime import run_blocking

    need_model_extra()
    settings = Settings()
    _say_what_is_served(settings)
    raise typer.Exit(run_blocking(settings, "all"))


@app.command()
def worker() -> None:
    """Only the caption worker (needs a shared broker: CAPTIONBOT_BROKER_URL=redis://...)."""
    from captionbot.settings import Settings
    from captionbot_cli.runtime import run_blocking

    need_model_extra()
    raise typer.Exit(run_blocking(Settings(), "worker"))


@app.command()
def bot() -> None:
    """Only the chat bots and result delivery (needs a shared broker; no torch needed)."""
    from captionbot.settings import Settings
    from captionbot_cli.runtime import run_blocking

    settings = Settings()
    _say_what_is_served(settings)
    raise typer.Exit(run_blocking(settings, "bot"))


def _say_what_is_served(settings: Any) -> None:
    """Refuse to start with no front end at all; say so when only the web page will run."""
    from captionbot_cli.runtime import FRONT_END_SETTINGS, enabled_adapters

    served = enabled_adapters(settings)
    if not served:
        raise fail(f"nothing to serve: {FRONT_END_SETTINGS}")
    if served == ["web"]:
        typer.echo(
            f"only the web page is served, at http://{settings.web_host}:{settings.web_port}/"
            " (set TELEGRAM_BOT_TOKEN and/or DISCORD_BOT_TOKEN for the bots)",
            err=True,
        )


@app.command()
def web(
    port: Annotated[int | None, typer.Option(help="Port to serve on (default: CAPTIONBOT_WEB_PORT, 8080)")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: CAPTIONBOT_WEB_HOST)")] = None,
) -> None:
    """The web page: describe a photo in the browser, rate it; /moderate for moderators.

    On the embedded default (memory:// queue) the caption worker runs in this process too; with a
    shared broker (redis://) only the page runs, and workers elsewhere answer."""
    from captionbot.broker.options import parse_broker_url
    from captionbot.settings import Settings
    from captionbot_cli.runtime import run_blocking

    overrides: dict[str, Any] = {}
    if port is not None:
        overrides["web_port"] = port
    if host is not None:
        overrides["web_host"] = host
    settings = Settings(**overrides)
    if settings.web_port == 0:
        raise fail("the web page needs a port: --port 8080 (CAPTIONBOT_WEB_PORT is 0)")
    durable = parse_broker_url(settings.broker_url).durable
    if not durable:
        need_model_extra()
    raise typer.Exit(run_blocking(settings, "bot" if durable else "all", only_adapters=["web"]))


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when something goes wrong")] = False,
) -> None:
    _state["debug"] = debug


_state: dict[str, bool] = {"debug": False}


def main() -> None:
    """The `captionbot` command: errors before a command can do its job are one or two lines
    (captionbot_cli.errors) with a non-zero exit; the traceback only with --debug."""
    import sys

    from captionbot_cli.errors import describe

    try:
        code = app(standalone_mode=False)  # click returns the exit code instead of exiting
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last stop before a traceback reaches the person
        if isinstance(exc, typer.TyperException):  # usage errors: Typer's own short message
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            sys.exit(getattr(exc, "exit_code", 2))
        if _state["debug"]:
            raise
        lines = describe(exc) or [
            f"error: {type(exc).__name__}: {exc}".splitlines()[0],
            "(rerun with --debug for details)",
        ]
        for line in lines:
            typer.echo(line, err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
