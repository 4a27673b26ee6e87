"""TEMPORARY: the old module name while callers move to the storage modules."""

from captionbot.storage.captions import *  # noqa: F403
from captionbot.storage.deliveries import *  # noqa: F403
from captionbot.storage.deliveries import DEFAULT_DELIVERY_ATTEMPTS  # noqa: F401
from captionbot.storage.jobs import *  # noqa: F403
from captionbot.storage.model_versions import *  # noqa: F403
from captionbot.storage.retention import *  # noqa: F403
from captionbot.storage.users import *  # noqa: F403
