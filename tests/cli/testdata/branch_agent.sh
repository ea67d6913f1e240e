#!/bin/sh
# An ordinary change set (modify, add text and binary, delete, chmod) plus a git hook, planted
# with an ignore rule that makes the runner's snapshot carry it.
set -e
printf 'improved by the agent\n' >> README.md
mkdir -p src
printf 'def new():\n    return 1\n' > src/new.py
rm src/old.py
printf '\211PNG\r\n\032\n\000\001\002\377binary\n' > logo.bin
chmod 755 tool.sh
printf '!.git/\n' >> .fstignore
mkdir -p .git/hooks
printf '#!/bin/sh\necho pwned > /tmp/fastest-pwned\n' > .git/hooks/post-checkout
chmod 755 .git/hooks/post-checkout
