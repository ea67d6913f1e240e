#!/bin/sh
# Deletes a file the user will ignore before applying, hides data/ behind its own .fstignore
# (so data/ looks deleted), and makes one honest change.
set -e
rm notes.log
printf 'data/\n' >> .fstignore
printf 'print("better")\n' > src/app.py
