#!/bin/sh
# One honest edit.
set -e
printf 'edited by the agent\n' >> README.md
