"""Wires the web page into a process: the caption service for visitors, and the moderation service
(the same database and photo store) for the moderator's page."""

from __future__ import annotations

from bot.web.app import WebFrontEnd
from captionbot.service import CaptionService, ModerationService
from captionbot.settings import Settings


def build(settings: Settings, service: CaptionService) -> WebFrontEnd:
    """The ``web`` adapter factory (see captionbot_cli.runtime)."""
    moderation = ModerationService(settings, service.session_factory, service.image_store)
    return WebFrontEnd(settings, service, moderation)
