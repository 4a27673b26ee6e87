"""The Telegram chat adapter (python-telegram-bot v22): see :mod:`bot.telegram.app`."""
