#!/bin/sh
# heal.sh RUN-DIR: undo every partition (partition.sh, or the harness's).
. "$(dirname "$0")/env.sh"
need_netns
for n in $CHAOS_NODES; do
	ip -n "$(node_var "$n" NS)" neigh flush dev "$(node_var "$n" DEV)" nud permanent ||
		chaos_die "could not heal $n"
done
echo "healed: all nodes reach each other"
