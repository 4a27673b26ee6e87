"""The web page: caption a photo in the browser and rate it (:mod:`bot.web.public`), and the
moderator's page (:mod:`bot.web.moderation`). aiohttp, server-rendered Jinja2 pages that work
without JavaScript, through the same :class:`~captionbot.service.CaptionService` as the chat bots."""
