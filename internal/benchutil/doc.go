// Package benchutil holds the measuring pieces of `mnemo bench`: a latency
// recorder with exact percentiles, closed-loop and open-loop load drivers,
// readers of a process's CPU time and memory from /proc, a parser of
// redis-benchmark's CSV output, and the little of a RESP client that
// preloading a server before redis-benchmark needs (pipelined commands,
// replies read and checked).
//
// It knows nothing about mnemo: an operation is a func the caller gives,
// and a process is a pid. The caller owns every goroutine a driver starts;
// each driver returns only when all of them have ended.
//
// The open-loop driver exists because a closed loop hides queueing: a
// caller that waits for its previous answer sends less when the server is
// slow, so the slow moments are under-sampled ("coordinated omission").
// OpenLoop schedules sends at a fixed rate and measures each latency from
// the scheduled time, so a send that waited for a free worker counts the
// wait.
package benchutil
