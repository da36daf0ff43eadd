#!/usr/bin/env bash
# Manual check (not part of the test suite): the OpenAI backend against a real third-party
# server, llama-cpp-python's OpenAI-compatible server, serving the default model on loopback.
#
#   VENV=/tmp/lcp-venv crates/tandem-model/scripts/check-llama-cpp-python-server.sh
#
# Needs a venv with `llama-cpp-python[server]` (built from the PyPI sdist: needs cmake, g++;
# ~10 minutes on 2 cores): python3 -m venv $VENV && $VENV/bin/pip install 'llama-cpp-python[server]'
set -euo pipefail
VENV=${VENV:-/tmp/lcp-venv}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
MODEL=${TANDEM_MODEL_PATH:-$ROOT/target/models/SmolLM2-135M-Instruct.Q4_1.gguf}
PORT=${PORT:-18080}

"$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias smollm2 \
    --host 127.0.0.1 --port "$PORT" --n_threads "$(nproc)" > /tmp/llama-cpp-python-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/v1/models" > /dev/null && break
    sleep 0.2
done
TANDEM_OPENAI_URL="http://127.0.0.1:$PORT/v1" TANDEM_OPENAI_MODEL=smollm2 \
    cargo run -q -p tandem-model --release --example chat -- "I feel anxious about tomorrow."
