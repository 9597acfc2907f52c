// Package client is the Go SDK for mnemo.
//
// A Client talks to any nodes of a cluster (any node coordinates any
// request) over mnemo's RPC port, with pooled, multiplexed connections. Every
// call takes a context.Context: its deadline bounds the call here and is
// sent along so the coordinating node gives up at the same time.
//
// Reads return every concurrent value (siblings) plus an opaque Context.
// Writing with that Context supersedes exactly the values that were read;
// writing without one adds a sibling (in siblings mode) or overwrites (in
// lww mode). The read-modify-write loop of a set kept in one key:
//
//	res, err := c.Get(ctx, key)
//	if err != nil && !errors.Is(err, client.ErrNotFound) {
//		return err
//	}
//	merged := union(res.Values...) // resolve the siblings your way
//	_, err = c.Put(ctx, key, merged, client.WithContext(res.Context))
//
// Quorums are tunable per call with R, W and N, and Strict counts only home
// replicas (Riak's PR/PW). Errors are ErrNotFound, *QuorumError (matching
// ErrQuorum), ErrTooLarge, ErrTimeout and ErrUnavailable, checked with
// errors.Is / errors.As.
package client

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/internal/wire"
)

// Errors returned by the client.
var (
	// ErrNotFound: no replica holds a live value (never written, or deleted).
	ErrNotFound = errors.New("mnemo: not found")
	// ErrQuorum is matched by every *QuorumError.
	ErrQuorum = errors.New("mnemo: quorum failed")
	// ErrTooLarge: the key or value is over the cluster's limit.
	ErrTooLarge = errors.New("mnemo: too large")
	// ErrTimeout: the deadline passed before enough replicas answered.
	ErrTimeout = errors.New("mnemo: timeout")
	// ErrUnavailable: no node could be reached, or the node is stopping.
	ErrUnavailable = errors.New("mnemo: unavailable")
	// ErrBadRequest: the node refused the request as invalid.
	ErrBadRequest = errors.New("mnemo: bad request")
	// ErrForbidden: the node does not take this request from this
	// client's certificate.
	ErrForbidden = errors.New("mnemo: forbidden")
)

// QuorumError is a read or write that reached too few replicas.
type QuorumError struct {
	Op     string // get, put or delete
	Acked  int    // replicas that acknowledged (write) or answered (read)
	Asked  int    // replicas asked
	Needed int    // R or W
	// Timeout is true when the deadline ended the wait.
	Timeout bool
	// Msg is the coordinator's account ("quorum failed: put acknowledged
	// by 1 of 3 replicas asked, 2 needed; ...").
	Msg string
}

func (e *QuorumError) Error() string { return "mnemo: " + e.Msg }

// Is makes errors.Is(err, ErrQuorum) true, and ErrTimeout when the deadline
// ended the wait.
func (e *QuorumError) Is(target error) bool {
	return target == ErrQuorum || (e.Timeout && target == ErrTimeout)
}

// Context is the opaque causal context of a read. Pass it to Put (or
// Delete) to supersede what was read. Its String form is what the CLI
// prints and takes with --context.
type Context []byte

// String encodes the context as URL-safe base64.
func (c Context) String() string { return base64.RawURLEncoding.EncodeToString(c) }

// ParseContext decodes Context.String's output.
func ParseContext(s string) (Context, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("mnemo: bad context %q: %w", s, err)
	}
	return b, nil
}

// Sibling is one concurrent version of a value.
type Sibling struct {
	Value     []byte
	Timestamp time.Time // when the versioning replica took the write
	Actor     string    // the replica (node#epoch) that versioned it
	Counter   uint64
	Tombstone bool // only with IncludeTombstones
}

// Result is a read's outcome.
type Result struct {
	// Values holds one entry per sibling (one when there is no conflict).
	Values [][]byte
	// Siblings carries the values with their metadata.
	Siblings []Sibling
	// Context supersedes what was read when passed to Put or Delete.
	Context Context
	// Replies is how many replicas had answered.
	Replies int
}

// Value returns the single value, or the first sibling's when there are
// several (check len(Values)).
func (r *Result) Value() []byte {
	if r == nil || len(r.Values) == 0 {
		return nil
	}
	return r.Values[0]
}

// Config configures a Client.
type Config struct {
	// Addrs are RPC addresses of nodes; requests rotate over them and fail
	// over to the next when a node cannot be reached.
	Addrs []string
	// DialTimeout bounds connecting to a node. Default 2s.
	DialTimeout time.Duration
	// Timeout applies to calls whose context has no deadline. Default 10s.
	Timeout time.Duration
	// ConnsPerAddr is how many multiplexed connections to keep per node.
	// Default 1: one connection batches more frames per syscall, which
	// measured faster than several up to 64 concurrent callers.
	ConnsPerAddr int
	// TLS, when set, makes every connection TLS (nodes run with
	// --security transitional or required). A node asks for a client
	// certificate (mnemo://client/<name>, see mnemo certs): put it in
	// Certificates. LoadTLS builds one from PEM files. A config with
	// neither ServerName nor InsecureSkipVerify checks the node's
	// certificate against the dialed host.
	TLS *tls.Config
}

// WithTLS returns cfg with TLS set: NewWithConfig(client.WithTLS(cfg, t)).
func WithTLS(cfg Config, t *tls.Config) Config {
	cfg.TLS = t
	return cfg
}

// LoadTLS makes the TLS config of a client from PEM files: caFile, the CA
// bundle of the cluster, and optionally a client certificate and key. It
// accepts any node whose certificate chains to that bundle and names a
// node (mnemo://node/<id>), whatever address it was dialed at.
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	t, err := security.LoadClientConfig(caFile, certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("mnemo: %w", err)
	}
	return t, nil
}

// Client is safe for concurrent use. Close it when done.
type Client struct {
	cfg  Config
	pool *wire.Pool
	next atomic.Uint64
}

// New returns a client of the nodes at addrs (RPC addresses). It does not
// connect until the first call.
func New(addrs ...string) (*Client, error) {
	return NewWithConfig(Config{Addrs: addrs})
}

// NewWithConfig returns a client configured by cfg.
func NewWithConfig(cfg Config) (*Client, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("mnemo: no node addresses")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ConnsPerAddr == 0 {
		cfg.ConnsPerAddr = 1
	}
	wcfg := wire.ClientConfig{DialTimeout: cfg.DialTimeout, ConnsPerAddr: cfg.ConnsPerAddr}
	if t := cfg.TLS; t != nil {
		wcfg.TLS = func(string) (*tls.Config, error) { return t, nil }
	}
	return &Client{cfg: cfg, pool: wire.NewPool(wcfg)}, nil
}

// Close closes the client's connections.
func (c *Client) Close() error { return c.pool.Close() }

// Option tunes one call.
type Option func(*options)

type options struct {
	r, w, n     int
	strict      bool
	local       bool
	mode        proto.Mode
	context     Context
	overwrite   bool
	noRepair    bool
	tombstones  bool
	addr        string
	haveContext bool
}

// R sets the read quorum for this call.
func R(r int) Option { return func(o *options) { o.r = r } }

// W sets the write quorum for this call.
func W(w int) Option { return func(o *options) { o.w = w } }

// N sets the replica count for this call.
func N(n int) Option { return func(o *options) { o.n = n } }

// Strict counts only home replicas toward R or W (no sloppy quorum).
func Strict() Option { return func(o *options) { o.strict = true } }

// Local reads only the contacted node's stored copy: no quorum, no repair.
// Use with Node to check one replica.
func Local() Option { return func(o *options) { o.local = true } }

// Node sends the call to the node at this RPC address instead of rotating.
func Node(addr string) Option { return func(o *options) { o.addr = addr } }

// LWW resolves this call last-write-wins, whatever the cluster's mode.
func LWW() Option { return func(o *options) { o.mode = proto.ModeLWW } }

// Siblings keeps siblings for this call, whatever the cluster's mode.
func Siblings() Option { return func(o *options) { o.mode = proto.ModeSiblings } }

// WithContext makes a Put or Delete supersede exactly what the read that
// returned ctx saw.
func WithContext(ctx Context) Option {
	return func(o *options) { o.context = ctx; o.haveContext = true }
}

// Overwrite makes a Put supersede every version the versioning replica
// holds, as Redis SET does.
func Overwrite() Option { return func(o *options) { o.overwrite = true } }

// NoRepair skips read repair for this read.
func NoRepair() Option { return func(o *options) { o.noRepair = true } }

// IncludeTombstones lists delete markers among the siblings.
func IncludeTombstones() Option { return func(o *options) { o.tombstones = true } }

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Get reads key. When no live value exists it returns ErrNotFound together
// with a Result whose Context supersedes the delete markers, if any.
func (c *Client) Get(ctx context.Context, key []byte, opts ...Option) (*Result, error) {
	o := collect(opts)
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	req := proto.GetRequest{Key: key, R: o.r, N: o.n, Strict: o.strict, Local: o.local, Mode: o.mode,
		NoRepair: o.noRepair, Tombstones: o.tombstones, TimeoutMs: timeoutMs(ctx)}
	var reply proto.GetReply
	if err := c.call(ctx, o.addr, proto.KindGet, &req, &reply, true); err != nil {
		return nil, err
	}
	res := &Result{Context: reply.Context, Replies: reply.Replies}
	for _, s := range reply.Siblings {
		res.Siblings = append(res.Siblings, Sibling{Value: s.Value, Timestamp: time.Unix(0, s.Timestamp), Actor: s.Actor, Counter: s.Counter, Tombstone: s.Tombstone})
		if !s.Tombstone {
			res.Values = append(res.Values, s.Value)
		}
	}
	if !reply.Found {
		return res, ErrNotFound
	}
	return res, nil
}

// Put writes value under key and returns the context of the new version.
func (c *Client) Put(ctx context.Context, key, value []byte, opts ...Option) (Context, error) {
	return c.put(ctx, &proto.PutRequest{Key: key, Value: value}, opts)
}

// Delete deletes key. With WithContext it deletes exactly what was read;
// without, every version the versioning replica holds.
func (c *Client) Delete(ctx context.Context, key []byte, opts ...Option) error {
	_, err := c.put(ctx, &proto.PutRequest{Key: key, Delete: true}, opts)
	return err
}

func (c *Client) put(ctx context.Context, req *proto.PutRequest, opts []Option) (Context, error) {
	o := collect(opts)
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	req.Context, req.W, req.N, req.Strict, req.Mode, req.Overwrite = o.context, o.w, o.n, o.strict, o.mode, o.overwrite
	req.TimeoutMs = timeoutMs(ctx)
	var reply proto.PutReply
	// NB: a put is retried on another node only when the first could not
	// be reached at all; after a broken connection it may have been applied.
	if err := c.call(ctx, o.addr, proto.KindPut, req, &reply, false); err != nil {
		return nil, err
	}
	return reply.Context, nil
}

// Status is the cluster as one node sees it.
type Status = proto.Status

// MemberStatus is one member in a Status.
type MemberStatus = proto.MemberStatus

// NodeInfo is one node's own figures in a Status.
type NodeInfo = proto.NodeInfo

// Status asks a node (Node option, or the next in rotation) for the
// cluster's status.
func (c *Client) Status(ctx context.Context, opts ...Option) (*Status, error) {
	o := collect(opts)
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	var st Status
	if err := c.call(ctx, o.addr, proto.KindStatus, &proto.StatusRequest{TimeoutMs: timeoutMs(ctx) / 2}, &st, true); err != nil {
		return nil, err
	}
	return &st, nil
}

// Ping checks that a node answers.
func (c *Client) Ping(ctx context.Context, opts ...Option) error {
	o := collect(opts)
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	return c.call(ctx, o.addr, proto.KindPing, nil, nil, true)
}

func (c *Client) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// timeoutMs is what is left of ctx's deadline, sent so the coordinator
// stops waiting when the caller does (a little earlier, so its answer can
// still arrive).
func timeoutMs(ctx context.Context) int64 {
	d, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	left := time.Until(d)
	left -= left / 10
	return max(1, left.Milliseconds())
}

// call sends one request to addr, or to the nodes in rotation, failing
// over to the next node when one cannot be reached (and, if retryBroken,
// after any transport error: only for requests safe to repeat).
func (c *Client) call(ctx context.Context, addr string, kind wire.Kind, req, reply any, retryBroken bool) error {
	var body []byte
	if req != nil {
		var err error
		if body, err = wire.Marshal(req); err != nil {
			return fmt.Errorf("mnemo: encode request: %w", err)
		}
	}
	addrs := []string{addr}
	if addr == "" {
		start := c.next.Add(1)
		addrs = make([]string, len(c.cfg.Addrs))
		for i := range addrs {
			addrs[i] = c.cfg.Addrs[(int(start)+i)%len(c.cfg.Addrs)]
		}
	}
	var lastErr error
	for _, a := range addrs {
		_, resp, err := c.pool.Call(ctx, a, kind, body)
		if err == nil {
			if reply == nil {
				return nil
			}
			if err := wire.Unmarshal(resp, reply); err != nil {
				return fmt.Errorf("mnemo: malformed reply from %s: %w", a, err)
			}
			return nil
		}
		var we *wire.Error
		switch {
		case errors.As(err, &we):
			return fromWire(we)
		case ctx.Err() != nil:
			return fmt.Errorf("%w: %w", ErrTimeout, err)
		case !retryBroken && !errors.Is(err, wire.ErrNotSent):
			return fmt.Errorf("%w: call to %s failed after sending (it may have been applied): %w", ErrUnavailable, a, err)
		}
		lastErr = err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, lastErr)
}

// fromWire maps a node's error response to the client's errors.
func fromWire(we *wire.Error) error {
	switch we.Code {
	case wire.CodeQuorum, wire.CodeTimeout:
		var d proto.QuorumDetail
		if len(we.Data) > 0 && wire.Unmarshal(we.Data, &d) == nil {
			return &QuorumError{Op: d.Op, Acked: d.Acked, Asked: d.Asked, Needed: d.Needed, Timeout: we.Code == wire.CodeTimeout, Msg: we.Msg}
		}
		if we.Code == wire.CodeTimeout {
			return fmt.Errorf("%w: %s", ErrTimeout, we.Msg)
		}
		return fmt.Errorf("%w: %s", ErrQuorum, we.Msg)
	case wire.CodeTooLarge:
		return fmt.Errorf("%w: %s", ErrTooLarge, we.Msg)
	case wire.CodeNotFound:
		return ErrNotFound
	case wire.CodeUnavailable, wire.CodeOverloaded:
		return fmt.Errorf("%w: %s", ErrUnavailable, we.Msg)
	case wire.CodeBadRequest, wire.CodeUnknownKind:
		return fmt.Errorf("%w: %s", ErrBadRequest, we.Msg)
	case wire.CodeForbidden:
		return fmt.Errorf("%w: %s", ErrForbidden, we.Msg)
	}
	return fmt.Errorf("mnemo: %s", we.Msg)
}

// Leave asks the node at addr to decommission itself: it hands every
// partition to its new owners, leaves the ring and exits. Leave returns
// once the node has accepted; watch Status for progress.
func (c *Client) Leave(ctx context.Context, addr string) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	return c.call(ctx, addr, proto.KindLeave, nil, nil, false)
}

// Remove takes a dead member out of the ring (asking any node, or the one
// given with the Node option); the survivors re-replicate its partitions.
func (c *Client) Remove(ctx context.Context, id string, opts ...Option) error {
	o := collect(opts)
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	return c.call(ctx, o.addr, proto.KindRemove, &proto.RemoveRequest{ID: id}, nil, false)
}

// OwnershipEvent says a node gained a partition (from Peers) or lost one
// (to Peers): the hook applications used to get from a coordination
// library's partition-change callbacks.
type OwnershipEvent = proto.OwnershipEvent

// WatchOwnership streams the ownership events of the node at addr, from
// the ones it still remembers on, until ctx ends; the channel is then
// closed. A broken connection is retried; events missed meanwhile are
// caught up from the node's memory of its last 1000.
func (c *Client) WatchOwnership(ctx context.Context, addr string) <-chan OwnershipEvent {
	out := make(chan OwnershipEvent, 64)
	go func() {
		defer close(out)
		var after uint64
		for ctx.Err() == nil {
			var reply proto.EventsReply
			cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
			err := c.call(cctx, addr, proto.KindOwnershipEvents, &proto.EventsRequest{After: after, WaitMs: 30000}, &reply, true)
			cancel()
			if err != nil {
				t := time.NewTimer(time.Second)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				continue
			}
			for _, ev := range reply.Events {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
			after = reply.Next
		}
	}()
	return out
}

// KeyringReply is the cluster's answer to a keyring call: one result per
// ring member (not removed), with its key fingerprints after the call, or
// why it failed (a dead member is reported as not reached).
type KeyringReply = proto.KeyringReply

// KeyringNodeResult is one member's part of a KeyringReply.
type KeyringNodeResult = proto.KeyringNodeResult

// keyring sends one keyring operation to a node (Node option, or the next
// in rotation), which applies it to every member. Every operation is safe
// to repeat (install and remove of a key already there, or gone, are
// no-ops), so a broken call is retried on the next node.
func (c *Client) keyring(ctx context.Context, req *proto.KeyringRequest, opts []Option) (*KeyringReply, error) {
	o := collect(opts)
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	req.TimeoutMs = timeoutMs(ctx) / 2
	var reply KeyringReply
	if err := c.call(ctx, o.addr, proto.KindKeyring, req, &reply, true); err != nil {
		return nil, err
	}
	return &reply, nil
}

// KeyringList reports every member's gossip keys, by fingerprint.
func (c *Client) KeyringList(ctx context.Context, opts ...Option) (*KeyringReply, error) {
	return c.keyring(ctx, &proto.KeyringRequest{Op: proto.KeyringList}, opts)
}

// KeyringInstall adds a 32-byte gossip key on every live member, for
// decryption only: the first step of a rotation. The key travels over the
// RPC port (TLS once the cluster's security is on) and is never logged.
func (c *Client) KeyringInstall(ctx context.Context, key []byte, opts ...Option) (*KeyringReply, error) {
	return c.keyring(ctx, &proto.KeyringRequest{Op: proto.KeyringInstall, Key: key}, opts)
}

// KeyringUse makes the key with this fingerprint (or a unique prefix of at
// least 8 hex characters) the primary on every live member: the second
// step, once every member has it installed.
func (c *Client) KeyringUse(ctx context.Context, fingerprint string, opts ...Option) (*KeyringReply, error) {
	return c.keyring(ctx, &proto.KeyringRequest{Op: proto.KeyringUse, Fingerprint: fingerprint}, opts)
}

// KeyringRemove drops the key with this fingerprint on every live member:
// the last step, once every member uses the new primary.
func (c *Client) KeyringRemove(ctx context.Context, fingerprint string, opts ...Option) (*KeyringReply, error) {
	return c.keyring(ctx, &proto.KeyringRequest{Op: proto.KeyringRemove, Fingerprint: fingerprint}, opts)
}
