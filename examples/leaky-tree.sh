#!/bin/sh
# A badly behaved process tree, the kind dev servers and build tools create:
# a grandchild, a daemon that escapes into its own session, and a child that
# ignores SIGTERM. The script itself exits at once and leaves them running.
sleep 1000 &
( setsid sleep 1001 & )
( trap '' TERM; exec sleep 1002 ) &
echo "leaky-tree: marker TEND_ID=${TEND_ID:-none}; started a grandchild, a setsid daemon and a SIGTERM-ignorer, now exiting"
exit 0
