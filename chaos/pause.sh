#!/bin/sh
# pause.sh RUN-DIR NODE: freeze a node (SIGSTOP); its peers declare it dead
# after about 3 s. Continue it with resume.sh.
CHAOS_USAGE="NODE"
. "$(dirname "$0")/env.sh"
[ $# -eq 2 ] || chaos_die "usage: pause.sh RUN-DIR NODE"
pid=$(node_pid "$2")
[ -n "$pid" ] || chaos_die "$(node_id "$2") is not running"
kill -STOP "$pid" && echo "paused $(node_id "$2") (pid $pid)"
