# Shared by the operator scripts in chaos/: loads the cluster.env a chaos
# run wrote in its directory and resolves node names. Not run by itself.
#
#   . "$(dirname "$0")/env.sh" DIR
#   node_var node-3 PIDFILE   # prints NODE_3_PIDFILE's value

chaos_die() { echo "$(basename "$0"): $*" >&2; exit 2; }

[ $# -ge 1 ] || chaos_die "usage: $(basename "$0") RUN-DIR ${CHAOS_USAGE:-}"
[ -f "$1/cluster.env" ] || chaos_die "$1/cluster.env not found: is RUN-DIR the --dir of a running 'mnemo chaos' (see --hold)?"
. "$1/cluster.env"

# node_id normalises "3" or "node-3" to "node-3".
node_id() {
	case "$1" in
	node-*) echo "$1" ;;
	*) echo "node-$1" ;;
	esac
}

# node_var NODE NAME prints the cluster.env value NODE_<n>_NAME.
node_var() {
	v=$(node_id "$1" | tr 'a-z-' 'A-Z_')
	eval "printf '%s' \"\${${v}_$2:-}\""
}

# node_pid NODE prints the node's pid if it runs, else nothing.
node_pid() {
	f=$(node_var "$1" PIDFILE)
	[ -n "$f" ] || chaos_die "unknown node $1 (nodes: $CHAOS_NODES)"
	[ -f "$f" ] || return 0
	p=$(cat "$f")
	if kill -0 "$p" 2>/dev/null; then echo "$p"; fi
}

need_netns() {
	[ "$CHAOS_NETNS" = 1 ] || chaos_die "this run has no network namespaces (not root, or --netns off): partitions need them"
}
