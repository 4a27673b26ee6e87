"""The Discord adapter: slash commands, a "Caption image" context menu, DMs and mentions in;
captions with rating / correction / alt-text buttons out. Entry point: :func:`bot.discord.app.build`.
See docs/discord.md."""
