# syntax=docker/dockerfile:1
# Chat bots (Telegram, Discord), the web page and result delivery: `captionbot bot`. No torch: the captioning runs
# in the worker image. Also runs `captionbot db upgrade` (the compose file's `migrate` service).
# Build from the repository root:
#   docker build -f docker/bot.Dockerfile -t captionbot-bot:latest .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# Never add model, train, efficientnet or all here (tests/test_docker_files.py checks).
ARG EXTRAS=telegram,discord,postgres,redis
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY captionbot ./captionbot
COPY captionbot_cli ./captionbot_cli
COPY captioner ./captioner
COPY training ./training
COPY bot ./bot
COPY migrations ./migrations
# The build fails if anything pulled torch in.
# DL3013: versions come from pyproject.toml (the project ships no lock file).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[${EXTRAS}]" \
    && python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('torch') is not None)" \
    && captionbot --help > /dev/null

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CAPTIONBOT_DATA_DIR=/data \
    CAPTIONBOT_METRICS_PORT=9108 \
    CAPTIONBOT_WEB_HOST=0.0.0.0
RUN groupadd --system --gid 10001 captionbot \
    && useradd --system --uid 10001 --gid captionbot --home-dir /app --shell /usr/sbin/nologin captionbot \
    && mkdir -p /app /data/images \
    && chown captionbot:captionbot /data /data/images
COPY --from=build /opt/venv /opt/venv
COPY docker/healthcheck.py /usr/local/bin/captionbot-healthcheck
WORKDIR /app
USER 10001:10001
# Mount a volume on /data: the image store, shared with the workers.
# 9108: /metrics and /healthz; 8080: the web page (CAPTIONBOT_WEB_PORT; 0 turns it off);
# 8443: the Telegram webhook server, when CAPTIONBOT_TELEGRAM_USE_WEBHOOK=true.
EXPOSE 9108 8080 8443
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/bin/captionbot-healthcheck"]
ENTRYPOINT ["captionbot"]
CMD ["bot"]
