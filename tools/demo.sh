#!/usr/bin/env bash
# The main job, one command, on a fresh Debian 12 machine:
#   installs what is missing (tools/setup.sh), starts dockerd (tools/start_dockerd.sh), builds the
#   server, runner, CLI, Docker plugin and model stub, builds the sandbox image
#   (tools/build_sandbox_image.sh), then runs a real job with the `fastest` CLI on a copy of
#   examples/hello: a real OpenCode agent in a real Docker container edits the project, and the
#   result is written back into the copy.
#
# Model: with ANTHROPIC_API_KEY or OPENAI_API_KEY set (or FASTEST_MODEL_BASE_URL pointing at an
# OpenAI-compatible endpoint) the real model is used. Without any, the real OpenCode agent runs
# against the offline model stub (tools/model_stub) with the scripted scenario
# examples/scenarios/basic.json — and the script says so.
#
# Usage: bash tools/demo.sh [--prompt TEXT] [--keep]      (--keep: leave the local server running)
# Env: FASTEST_DEMO_DIR (work dir: the example copy, the stub log and the CLI/server state in
# state/; default a new /tmp/fastest-demo.XXXXXX). The demo's local server is stopped at the end
# unless --keep (then use: bazel-bin/tools/cli/fastest --data_dir=<work>/state jobs|status|...).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"

PROMPT="Add src/farewell.sh (says goodbye, executable), mention it in README.md, and save the output of 'sh src/greet.sh fastest' in greeting.txt."
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prompt) PROMPT="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
t0=$(date +%s)

step "1/6 installing what is missing (tools/setup.sh)"
bash tools/setup.sh

step "2/6 starting dockerd (tools/start_dockerd.sh)"
bash tools/start_dockerd.sh

step "3/6 building server, runner, CLI, Docker plugin and model stub (bazel, offline)"
bazel build \
  //server:fastest-server \
  //runner:fastest-runner \
  //tools/cli:fastest \
  //tools/model_stub:fastest-model-stub \
  //backends/docker:libfastest_backend_docker.so
FASTEST="$REPO/bazel-bin/tools/cli/fastest"
STUB="$REPO/bazel-bin/tools/model_stub/fastest-model-stub"

step "4/6 building the sandbox image (runner + OpenCode, offline)"
bash tools/build_sandbox_image.sh

step "5/6 choosing the model"
STUB_PID=""
WORK="${FASTEST_DEMO_DIR:-$(mktemp -d /tmp/fastest-demo.XXXXXX)}"
mkdir -p "$WORK"
export FASTEST_DATA_DIR="$WORK/state"   # the demo's own CLI + server state
cleanup() {
  # Only what this script started: its local server (demo data dir) and its model stub.
  if [ "$KEEP" = 0 ] || [ -n "$STUB_PID" ]; then "$FASTEST" server stop >/dev/null 2>&1 || true; fi
  if [ -n "$STUB_PID" ]; then kill "$STUB_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  echo "ANTHROPIC_API_KEY is set: the real OpenCode agent uses Anthropic (${MODEL:-default model})."
elif [ -n "${OPENAI_API_KEY:-}" ]; then
  echo "OPENAI_API_KEY is set: the real OpenCode agent uses OpenAI (${MODEL:-default model})."
elif [ -n "${FASTEST_MODEL_BASE_URL:-}" ]; then
  echo "FASTEST_MODEL_BASE_URL is set: the real OpenCode agent uses that OpenAI-compatible endpoint."
else
  echo "no provider key set: the real OpenCode agent runs against the offline model stub"
  echo "(tools/model_stub, scripted scenario examples/scenarios/basic.json; set ANTHROPIC_API_KEY or"
  echo " OPENAI_API_KEY to use a real model)."
  rm -f "$WORK/stub.port"
  "$STUB" --scenario "$REPO/examples/scenarios/basic.json" --port 0 \
    --port_file "$WORK/stub.port" 2>"$WORK/model-stub.log" &
  STUB_PID=$!
  for _ in $(seq 1 100); do [ -s "$WORK/stub.port" ] && break; sleep 0.1; done
  [ -s "$WORK/stub.port" ] || { echo "demo: the model stub did not start:"; cat "$WORK/model-stub.log"; exit 1; }
  export FASTEST_MODEL_BASE_URL="http://127.0.0.1:$(cat "$WORK/stub.port")/v1"
  echo "model stub listening on $FASTEST_MODEL_BASE_URL (requests logged to $WORK/model-stub.log)"
fi

step "6/6 running the job: fastest run --dir $WORK/hello"
rm -rf "$WORK/hello"
cp -a examples/hello "$WORK/hello"
echo "prompt: $PROMPT"
echo "before:"; (cd "$WORK/hello" && find . -type f | sort | sed 's/^\.\//  /')
"$FASTEST" run --dir "$WORK/hello" --prompt "$PROMPT" --yes

step "result in $WORK/hello"
(cd "$WORK/hello" && find . -type f | sort | while read -r f; do
  printf '  %s %s\n' "$(stat -c %A "$f")" "${f#./}"; done)
for f in README.md greeting.txt src/farewell.sh; do
  if [ -f "$WORK/hello/$f" ]; then printf -- '--- %s\n' "$f"; cat "$WORK/hello/$f"; fi
done
if [ -x "$WORK/hello/src/farewell.sh" ]; then
  printf -- '--- running src/farewell.sh fastest: '; "$WORK/hello/src/farewell.sh" fastest
fi
echo
echo "demo finished in $(( $(date +%s) - t0 ))s."
if [ "$KEEP" = 1 ] && [ -z "$STUB_PID" ]; then
  echo "the local server keeps running: $FASTEST --data_dir=$FASTEST_DATA_DIR jobs|status|server stop"
fi
