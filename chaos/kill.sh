#!/bin/sh
# kill.sh RUN-DIR NODE: crash a node of a chaos run (SIGKILL), as a power
# cut would, and wait until it is gone. Restart it with restart.sh. NODE is
# node-3 or 3.
CHAOS_USAGE="NODE"
. "$(dirname "$0")/env.sh"
[ $# -eq 2 ] || chaos_die "usage: kill.sh RUN-DIR NODE"
pid=$(node_pid "$2")
[ -n "$pid" ] || chaos_die "$(node_id "$2") is not running"
kill -KILL "$pid" || exit 2
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	kill -0 "$pid" 2>/dev/null || { echo "killed $(node_id "$2") (pid $pid)"; exit 0; }
	sleep 0.25
done
chaos_die "$(node_id "$2") (pid $pid) still exists 5 s after SIGKILL"
