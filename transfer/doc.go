// Package transfer moves data when the ring changes: ownership transfer,
// Dynamo §4.9 ("Adding/Removing Storage Nodes"). A joining node pulls the
// partitions it will own before it serves them as a home replica; a
// leaving node hands its partitions to their new owners before it goes;
// the survivors of a removed (dead) member re-replicate what it held.
//
// # What it decides
//
// Every node compares the partitions it should hold (it is one of the N
// home replicas in the current ring, of active and leaving members, or in
// the future one, of active and joining members) with those it held at the
// last ring it saw:
//
//   - A partition it gains is recorded as an event "gained" (Peers: the
//     other home replicas in the current ring) and pulled from them. One
//     nobody else holds (a new cluster) is synced at once.
//   - A pull reads the partition in throttled batches (Config.BatchBytes
//     per scan reply, Config.Rate bytes per second for all pulls) and
//     merges them into the store (version.Merge: a pull never overwrites a
//     newer write). Its cursor is persisted after each batch, so a restart
//     resumes. With anti-entropy on (Config.AntiEntropy) it reads one live
//     holder, whose gaps anti-entropy repairs; without, every holder, so
//     one stale replica never stands for the whole. It waits while a
//     needed holder is down. Only when every source was read to the end is
//     the partition marked synced.
//   - A joining node turns active (Cluster.SetSelfStatus) once every
//     partition it will own is synced.
//   - A partition it loses is recorded as "lost" (Peers: its owners once
//     changes complete). Its data is dropped only once every home replica
//     of it, now and in the future ring, is alive and reports it synced.
//     A key that gained a hint meanwhile is kept by the hint log.
//   - A leaving node marks itself removed once every partition it owns is
//     synced at each of its future owners, keeps gossiping for
//     Config.LeaveGrace so the change spreads, then calls Cluster.Leave.
//   - With Config.AutoRemoveAfter set, the live member with the lowest id
//     removes (Cluster.Remove) every member gossip has seen dead for
//     longer; the survivors then pull its partitions as above.
//
// The loop checks after every ring change (Signal), every rejoin
// (NodeRejoined) and every Config.Interval.
//
// # State
//
// In the store's store.AuxTransfer keyspace:
//
//	"owned"                -> bitmap of partitions held at the last ring seen
//	"synced"               -> bitmap of partitions held completely
//	"cursor" | p | source  -> resume point of a pull of p from source
//	"status"               -> this node's own ring status, for restarts
//
// # Wire
//
// Its kinds are declared in internal/proto with every other:
// proto.KindTransferScan and proto.KindTransferSynced are between nodes;
// proto.KindOwnershipEvents long-polls a node's last MaxEvents events
// (mnemo events, client.WatchOwnership).
//
// # What the caller (the node) must do
//
//	t, _ := transfer.New(transfer.Config{Store: st, Cluster: c, N: n, ...})
//	status, ok := t.PersistedStatus()   // how this node enters the ring
//	for _, k := range t.Kinds() { route k to t.Handle }
//	on every new ring view: t.Signal(); on gossip rejoins: t.NodeRejoined(id)
//	whenever it changes its own ring status: t.PersistStatus(s)
//	on an empty directory that the ring already lists: t.Adopted(s)
//	once in gossip: t.Start()
//	on shutdown: t.Close(), then close the store
//
// Stats reports the figures for the node's status.
package transfer
