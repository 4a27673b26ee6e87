"""Container HEALTHCHECK: exit 0 when ``GET /healthz`` on the metrics port answers 200, else 1.

Standard library only (it runs in every image). The port is ``CAPTIONBOT_METRICS_PORT`` (the
``metrics_port`` setting, default 9108); with 0 the endpoint is off and there is nothing to check.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = "9108"


def main() -> int:
    port = os.environ.get("CAPTIONBOT_METRICS_PORT", DEFAULT_PORT).strip() or DEFAULT_PORT
    if port == "0":
        print("metrics_port is 0: /healthz is off, nothing to check")
        return 0
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            body = response.read(2048).decode("utf-8", "replace")
            status = response.status
    except urllib.error.HTTPError as exc:  # 503: a dependency (database, broker) is down
        body = exc.read(2048).decode("utf-8", "replace")
        status = exc.code
    except OSError as exc:  # not listening (yet), timeout
        print(f"{url}: {exc}")
        return 1
    print(f"{url}: {status} {body}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
