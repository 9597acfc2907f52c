#!/bin/sh
# restart.sh RUN-DIR NODE [--wipe]: start a stopped node again on its data
# directory (emptied first with --wipe), in its namespace, with the flags
# the run gave it; its log goes on in the run's nodes/ directory.
#
# NB: the node is then this script's child, not the harness's: the harness
# leaves it running at its final heal and says so, and does not stop it at
# the end; stop it with kill.sh.
CHAOS_USAGE="NODE [--wipe]"
. "$(dirname "$0")/env.sh"
[ $# -ge 2 ] || chaos_die "usage: restart.sh RUN-DIR NODE [--wipe]"
id=$(node_id "$2")
[ -z "$(node_pid "$2")" ] || chaos_die "$id is running; kill.sh it first"
if [ "${3:-}" = "--wipe" ]; then
	data=$(node_var "$2" DATA)
	[ -n "$data" ] || chaos_die "no data directory for $id"
	rm -rf "$data" && echo "wiped $data"
fi
cmd=$(node_var "$2" CMD)
setsid sh "$cmd" </dev/null >/dev/null 2>&1 &
pid=$!
echo "$pid" >"$(node_var "$2" PIDFILE)"
echo "restarted $id (pid $pid); log $(node_var "$2" LOG)"
