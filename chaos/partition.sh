#!/bin/sh
# partition.sh RUN-DIR NODE...: cut the named nodes off from the others
# (both ways; the harness still reaches every node). One node isolates it;
# two of five make a minority. Undo with heal.sh.
#
# Traffic is dropped silently by poisoning the neighbour (ARP) tables in
# the nodes' namespaces, as the harness does: each node on the other side
# gets a permanent entry with an address no interface has.
CHAOS_USAGE="NODE..."
. "$(dirname "$0")/env.sh"
need_netns
[ $# -ge 2 ] || chaos_die "usage: partition.sh RUN-DIR NODE..."
shift
side=""
for n in "$@"; do side="$side $(node_id "$n")"; done
cut() { # cut FROM TO: FROM's packets to TO vanish.
	ip -n "$(node_var "$1" NS)" neigh replace "$(node_var "$2" IP)" lladdr "$CHAOS_BLACKHOLE_MAC" \
		dev "$(node_var "$1" DEV)" nud permanent
}
for a in $side; do
	for b in $CHAOS_NODES; do
		case " $side " in *" $b "*) continue ;; esac
		cut "$a" "$b" && cut "$b" "$a" || chaos_die "could not cut $a from $b"
	done
done
echo "partitioned {$(echo $side | tr ' ' ',')} | rest"
