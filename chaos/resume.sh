#!/bin/sh
# resume.sh RUN-DIR NODE: continue a paused node (SIGCONT).
CHAOS_USAGE="NODE"
. "$(dirname "$0")/env.sh"
[ $# -eq 2 ] || chaos_die "usage: resume.sh RUN-DIR NODE"
pid=$(node_pid "$2")
[ -n "$pid" ] || chaos_die "$(node_id "$2") is not running"
kill -CONT "$pid" && echo "resumed $(node_id "$2") (pid $pid)"
