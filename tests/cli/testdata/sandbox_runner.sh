#!/bin/sh
# A sandbox under the process backend: the real fastest-runner ($1), with its workspace and the
# agent's home inside the sandbox's own directory (the process backend's working directory).
export FASTEST_WORKSPACE_DIR="$PWD/workspace"
export FASTEST_AGENT_HOME="$PWD/agent-home"
exec "$1"
