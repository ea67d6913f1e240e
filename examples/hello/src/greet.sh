#!/bin/sh
# Prints a greeting for $1 (default: world).
echo "Hello, ${1:-world}!"
