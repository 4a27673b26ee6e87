# syntax=docker/dockerfile:1
# Caption worker on an NVIDIA GPU: `captionbot worker` with the model, PostgreSQL and Redis extras.
# Build from the repository root:
#   docker build -f docker/worker-cuda.Dockerfile -t captionbot-worker-cuda:latest .
# The default Linux torch wheels on PyPI bundle the CUDA runtime and cuDNN as pip packages, so the
# base stays python:3.11-slim; the host needs only the NVIDIA driver and the NVIDIA Container
# Toolkit. For an older driver, pick a wheel built for an older CUDA, e.g.
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
# torch/torchvision are pinned to the same range as the `model` extra in pyproject.toml.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://pypi.org/simple
ARG TORCH_SPEC="torch>=2.4,<=2.14.1"
ARG TORCHVISION_SPEC="torchvision>=0.19,<=0.29.1"
ARG EXTRAS=model,postgres,redis,ocr
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, in its own layer: it is most of the image and changes least often.
# DL3013: the version range is the one pyproject.toml pins (checked by the tests).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "${TORCH_SPEC}" "${TORCHVISION_SPEC}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY captionbot ./captionbot
COPY captionbot_cli ./captionbot_cli
COPY captioner ./captioner
COPY training ./training
COPY bot ./bot
COPY migrations ./migrations
# No GPU at build time: this only checks that torch was built with CUDA.
# The OCR engine depends on OpenCV's desktop build, which needs libGL; the headless build of the
# same version is the same library without it.
# DL3013: versions come from pyproject.toml (the project ships no lock file).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[${EXTRAS}]" \
    && if pip show opencv-python > /dev/null 2>&1; then \
         cv="$(python -c 'from importlib.metadata import version; print(version("opencv-python"))')" \
         && pip uninstall -y opencv-python \
         && pip install --no-cache-dir "opencv-python-headless==${cv}"; \
       fi \
    && python -c "from captioner.ocr import TextReader; TextReader()" \
    && python -c "import sys, torch; print('torch', torch.__version__, 'cuda', torch.version.cuda); sys.exit(torch.version.cuda is None)" \
    && captionbot --help > /dev/null

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    CAPTIONBOT_DATA_DIR=/data \
    CAPTIONBOT_DEVICE=cuda \
    CAPTIONBOT_METRICS_PORT=9108
RUN groupadd --system --gid 10001 captionbot \
    && useradd --system --uid 10001 --gid captionbot --home-dir /app --shell /usr/sbin/nologin captionbot \
    && mkdir -p /app /data/images /models \
    && chown captionbot:captionbot /data /data/images /models
COPY --from=build /opt/venv /opt/venv
COPY docker/healthcheck.py /usr/local/bin/captionbot-healthcheck
WORKDIR /app
USER 10001:10001
# Mount a volume on /data: the image store, shared with the bot.
# /metrics and /healthz
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "/usr/local/bin/captionbot-healthcheck"]
ENTRYPOINT ["captionbot"]
CMD ["worker"]
