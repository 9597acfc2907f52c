package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/mnemo-kv/mnemo/config"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/resp"
)

// respBackend answers the Redis port through the quorum coordinator:
// GET reads the last-write-wins winner, SET overwrites what the versioning
// replica holds (so repeated SETs never pile up siblings), DEL deletes.
type respBackend Node

func (b *respBackend) Get(ctx context.Context, key []byte, q resp.Quorum) ([]byte, bool, error) {
	n := (*Node)(b)
	start := time.Now()
	reply, err := n.Get(ctx, &proto.GetRequest{Key: key, R: q.R, N: q.N, Mode: proto.ModeLWW})
	n.metrics.observe("resp_get", start, err)
	if err != nil {
		return nil, false, err
	}
	if !reply.Found || len(reply.Siblings) == 0 {
		return nil, false, nil
	}
	return reply.Siblings[0].Value, true, nil
}

func (b *respBackend) Set(ctx context.Context, key, value []byte, q resp.Quorum) error {
	n := (*Node)(b)
	start := time.Now()
	// Concurrent SETs of other connections are coordinated with it.
	_, err := n.puts.do(&proto.PutRequest{Key: key, Value: value, W: q.W, N: q.N, Overwrite: true})
	n.metrics.observe("resp_set", start, err)
	return err
}

// SetMany writes a pipeline's plain SETs together (resp.BatchSetter):
// see Node.PutMany.
func (b *respBackend) SetMany(ctx context.Context, keys, values [][]byte, q resp.Quorum) []error {
	n := (*Node)(b)
	start := time.Now()
	reqs := make([]*proto.PutRequest, len(keys))
	all := make([]proto.PutRequest, len(keys))
	for i := range keys {
		all[i] = proto.PutRequest{Key: keys[i], Value: values[i], W: q.W, N: q.N, Overwrite: true}
		reqs[i] = &all[i]
	}
	_, errs := n.PutMany(ctx, reqs)
	for _, err := range errs {
		n.metrics.observe("resp_set", start, err)
	}
	return errs
}

// GetMany reads a pipeline's GETs together (resp.BatchGetter): see
// Node.GetMany.
func (b *respBackend) GetMany(ctx context.Context, keys [][]byte, q resp.Quorum) ([][]byte, []bool, []error) {
	n := (*Node)(b)
	start := time.Now()
	reqs := make([]*proto.GetRequest, len(keys))
	all := make([]proto.GetRequest, len(keys))
	for i := range keys {
		all[i] = proto.GetRequest{Key: keys[i], R: q.R, N: q.N, Mode: proto.ModeLWW}
		reqs[i] = &all[i]
	}
	replies, errs := n.GetMany(ctx, reqs)
	values := make([][]byte, len(keys))
	found := make([]bool, len(keys))
	for i, rep := range replies {
		n.metrics.observe("resp_get", start, errs[i])
		if errs[i] == nil && rep.Found && len(rep.Siblings) > 0 {
			values[i], found[i] = rep.Siblings[0].Value, true
		}
	}
	return values, found, errs
}

// Delete reads first, since DEL answers how many keys existed; a key that
// does not exist is not written.
func (b *respBackend) Delete(ctx context.Context, key []byte, q resp.Quorum) (bool, error) {
	n := (*Node)(b)
	start := time.Now()
	defer func() { n.metrics.observe("resp_del", start, nil) }()
	reply, err := n.Get(ctx, &proto.GetRequest{Key: key, R: q.R, N: q.N, Mode: proto.ModeLWW})
	if err != nil {
		return false, err
	}
	if !reply.Found {
		return false, nil
	}
	if _, err := n.Put(ctx, &proto.PutRequest{Key: key, Delete: true, W: q.W, N: q.N, Context: reply.Context}); err != nil {
		return false, err
	}
	return true, nil
}

func (b *respBackend) Info() []resp.InfoSection {
	n := (*Node)(b)
	v := n.view.Load()
	alive := 0
	for id := range v.members {
		if n.alive(id) {
			alive++
		}
	}
	c := n.storeCounts()
	f := func(k string, v any) resp.InfoField { return resp.InfoField{Key: k, Value: fmt.Sprint(v)} }
	return []resp.InfoSection{
		{Name: "Server", Fields: []resp.InfoField{
			f("mnemo_version", Version), f("mnemo_node", n.self), f("mnemo_epoch", n.store.Epoch()),
			f("uptime_in_seconds", int64(time.Since(n.started).Seconds())),
		}},
		{Name: "Cluster", Fields: []resp.InfoField{
			f("cluster_enabled", 0), f("mnemo_members", len(v.members)), f("mnemo_members_alive", alive),
			f("mnemo_partitions", v.state.Partitions), f("mnemo_n", n.cfg.N), f("mnemo_r", n.cfg.R), f("mnemo_w", n.cfg.W),
			f("mnemo_conflicts", n.cfg.Conflicts.String()),
		}},
		{Name: "Keyspace", Fields: []resp.InfoField{
			{Key: "db0", Value: "keys=" + strconv.FormatInt(c.Live, 10) + ",expires=0,avg_ttl=0"},
			f("mnemo_local_tombstones", c.Tombstones),
		}},
	}
}

// startRESP opens the Redis port.
func (n *Node) startRESP() error {
	ln, err := net.Listen("tcp", n.cfg.RESP)
	if err != nil {
		return fmt.Errorf("node: resp listen %s: %w", n.cfg.RESP, err)
	}
	cfg := resp.DefaultConfig()
	cfg.MaxBulk = n.cfg.MaxValueSize + 64<<10
	cfg.Logger = n.log.With().Str("component", "resp").Logger()
	cfg.Registerer = n.metrics.reg
	cfg.Users = n.secrets.users // nil: open (config allows it on loopback only)
	// With security on the port speaks TLS (and, transitional, plaintext
	// too); a verified client certificate naming mnemo://client/<name>
	// logs in as user <name>.
	ln = n.SecureListener(ln, "resp", respClientAuth[n.cfg.RESPClientCerts])
	cfg.ClientIdentity = func(nc net.Conn) (string, bool) {
		id, ok := verifiedIdentity(nc)
		return id.Name, ok && id.Kind == security.ClientIdentity
	}
	n.respLn = ln
	n.resp = resp.NewServer(cfg, (*respBackend)(n))
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.resp.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			n.log.Error().Err(err).Msg("resp server stopped")
		}
	}()
	return nil
}

// respClientAuth maps --resp-client-certs to what the RESP port's TLS asks
// of clients.
var respClientAuth = map[string]security.ClientAuth{
	config.ClientCertsYes:      security.RequireClientCert,
	config.ClientCertsOptional: security.OptionalClientCert,
	config.ClientCertsNo:       security.NoClientCert,
}

// RESPAddr is the bound Redis-protocol address, or "" when off.
func (n *Node) RESPAddr() string {
	if n.respLn == nil {
		return ""
	}
	return n.respLn.Addr().String()
}
