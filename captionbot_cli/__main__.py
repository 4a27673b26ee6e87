"""``python -m captionbot_cli``: the same as the `captionbot` command."""

from captionbot_cli.main import main

main()
