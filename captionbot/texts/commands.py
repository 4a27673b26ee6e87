"""Help, the command menus, and Telegram's group setting (/autocaption).

The help is one text per platform built from shared parts: only how to ask for a caption differs
(Telegram's /caption in groups, Discord's slash commands and Apps menu).
"""

from __future__ import annotations

# -- help -----------------------------------------------------------------------------------------

HELP_INTRO = "Send me a photo and I'll describe it in words, for alt text."
HELP_MORE = (
    "Under each description you can rate it or send a better one: that's how I learn.\n"
    "/privacy: what I keep and why\n"
    "/stats: model version and your numbers\n"
    "/optout and /optin: training use of your photos\n"
    "/forget: delete everything about you"
)
TELEGRAM_HELP = "\n".join(
    [
        HELP_INTRO,
        "Photos, albums, forwarded photos and image files (JPEG, PNG, WebP, GIF, HEIC) all work.",
        "",
        "In a group, reply to a photo with /caption, or put /caption in a photo's caption.",
        "",
        HELP_MORE,
    ]
)
TELEGRAM_START = "Hi! " + TELEGRAM_HELP
#: Telegram, private chats: anything that isn't a photo or a command I know.
TELEGRAM_SEND_A_PHOTO = "Send me a photo and I'll describe it. /help shows what else I can do."
DISCORD_HELP = "\n".join(
    [
        HELP_INTRO,
        "Attached images and images shown from a link (JPEG, PNG, WebP, GIF, HEIC) all work.",
        "",
        "In a server, use /caption with an image, right-click a message and pick Apps, then Caption image, "
        "or mention me in a reply to a message with images.",
        "/alttext posts your image with the description as its alt text.",
        "",
        HELP_MORE,
    ]
)

# -- command menus (Discord: descriptions <= 100 characters) -------------------------------------

#: The commands every platform has, by name.
COMMANDS: dict[str, str] = {
    "privacy": "What I keep and how it is used",
    "stats": "Model version and your numbers",
    "optout": "Keep your photos and feedback out of training",
    "optin": "Allow your photos and feedback for training again",
    "forget": "Delete everything I have about you",
}
_DATA_COMMANDS = [(name, COMMANDS[name]) for name in ("privacy", "stats", "optout", "optin", "forget")]

TELEGRAM_PRIVATE_COMMANDS: list[tuple[str, str]] = [
    ("start", "How I work"),
    ("help", "What I can do"),
    ("caption", "Describe a photo (reply to it)"),
    *_DATA_COMMANDS,
]
TELEGRAM_GROUP_COMMANDS: list[tuple[str, str]] = [
    ("caption", "Describe a photo: reply to it with /caption"),
    ("autocaption", "Admins: describe every photo (on/off)"),
    ("help", "What I can do"),
    *_DATA_COMMANDS,
]

DISCORD_CMD_CAPTION = "Describe an image in words (alt text)"
DISCORD_CMD_CAPTION_IMAGE = "The image to describe"
DISCORD_CMD_ALTTEXT = "Re-post an image with a description as its alt text"
DISCORD_CMD_ALTTEXT_IMAGE = "The image to post with alt text"
DISCORD_MENU_CAPTION = "Caption image"  # message context menu (right-click a message, Apps)

# -- Telegram groups: /autocaption ----------------------------------------------------------------

TELEGRAM_AUTOCAPTION_ON = "Auto-captioning is on: I'll describe every photo posted here."
TELEGRAM_AUTOCAPTION_OFF = "Auto-captioning is off. Reply to a photo with /caption to have it described."
TELEGRAM_AUTOCAPTION_PRIVACY_NOTE = (
    "My privacy mode is on, so I can't see ordinary photos in groups yet. The bot's owner can turn it off "
    "in @BotFather (/setprivacy, then Disable) and add me to this group again."
)
TELEGRAM_AUTOCAPTION_ADMINS_ONLY = "Only group admins can turn auto-captioning on or off."
TELEGRAM_AUTOCAPTION_GROUPS_ONLY = "Auto-captioning is for groups. Here I describe every photo you send anyway."
TELEGRAM_AUTOCAPTION_USAGE = "Use /autocaption on or /autocaption off (admins only; needs my privacy mode off)."


def telegram_autocaption_state(enabled: bool) -> str:
    return f"Auto-captioning is {'on' if enabled else 'off'} here. {TELEGRAM_AUTOCAPTION_USAGE}"
