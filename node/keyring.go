package node

// Gossip encryption as the node drives it: when a transitional node may
// start encrypting, the cluster-wide `mnemo keyring` operations, and the
// keyring's metrics. The keys themselves live in gossip's keyring; the
// node holds no copy after start, logs only fingerprints, and never writes
// the operator's key file.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mnemo-kv/mnemo/gossip"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
)

// encryptionCheckInterval is how often a transitional node not yet
// encrypting re-checks whether it may, besides each ring change and each
// peer seen alive.
const encryptionCheckInterval = time.Second

// readGossipKeys reads the operator's key file, if the config names one,
// first of all: a bad file stops the node before it opens anything.
func (n *Node) readGossipKeys() error {
	if n.cfg.GossipKeyFile == "" {
		return nil
	}
	keys, err := gossip.ReadKeyFile(n.cfg.GossipKeyFile)
	if err != nil {
		return fmt.Errorf("node: --gossip-key-file: %w", err)
	}
	n.gossipKeys = keys
	if n.cfg.Security == security.Disabled {
		n.log.Info().Int("keys", len(keys)).Msg("gossip-key-file read; gossip stays plaintext with --security disabled")
	}
	return nil
}

// encryptionBlockers lists why this node may not start encrypting gossip
// yet: the members that could not read it. Every ring member not removed
// must advertise transitional or required, dead ones included (a dead
// disabled member that comes back still disabled must still be read), and
// so must every member gossip sees alive (one not in the ring yet
// advertises nothing). Empty: it may.
func (n *Node) encryptionBlockers() []string {
	v := n.view.Load()
	g := n.gsp.Load()
	if v == nil || g == nil {
		return []string{"gossip not started"}
	}
	if !n.joined() {
		return []string{"not joined yet"}
	}
	var out []string
	for id, m := range v.members {
		if m.Status != ring.Removed && security.Mode(m.Security) == security.Disabled {
			out = append(out, string(id)+" is disabled")
		}
	}
	for _, id := range g.AliveIDs() {
		if m, ok := v.members[ring.NodeID(id)]; !ok || m.Status == ring.Removed {
			out = append(out, id+" is not in the ring")
		}
	}
	slices.Sort(out)
	return out
}

// watchEncryption turns gossip encryption on once every member reads it,
// on a transitional node (a required node encrypts from the start, a
// disabled one never). Owned by n.wg; ends with n.bg, or once on.
func (n *Node) watchEncryption(wake <-chan struct{}) {
	defer n.wg.Done()
	tick := time.NewTicker(encryptionCheckInterval)
	defer tick.Stop()
	var last string
	for {
		g := n.gsp.Load() // nil until gossip has started
		if g != nil && g.Keyring().Encrypting {
			return // it joined a cluster that already encrypts
		}
		blockers := n.encryptionBlockers()
		if len(blockers) == 0 {
			if _, err := g.EnableEncryption(); err != nil {
				n.log.Error().Err(err).Msg("gossip encryption could not be turned on")
			}
			return
		}
		if s := strings.Join(blockers, ", "); s != last {
			n.log.Info().Strs("waiting_for", blockers).
				Msg("transitional: gossip stays plaintext until every member advertises transitional or required")
			last = s
		}
		select {
		case <-n.bg.Done():
			return
		case <-tick.C:
		case <-wake:
		}
	}
}

// startEncryptionWatch starts watchEncryption on a transitional node and
// returns the hook that wakes it (a ring change, a peer alive); nil on
// other nodes. The hook only signals.
func (n *Node) startEncryptionWatch() func() {
	if n.cfg.Security != security.Transitional {
		return nil
	}
	wake := make(chan struct{}, 1)
	n.wg.Add(1)
	go n.watchEncryption(wake)
	return func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// keyringResult applies req to this node's own keyring.
func (n *Node) keyringResult(req *proto.KeyringRequest) proto.KeyringNodeResult {
	res := proto.KeyringNodeResult{Node: string(n.self), Mode: n.cfg.Security.String()}
	g := n.gsp.Load()
	if g == nil {
		res.Error = "gossip not started"
		return res
	}
	var err error
	switch req.Op {
	case proto.KeyringList:
	case proto.KeyringInstall:
		err = g.InstallKey(req.Key)
	case proto.KeyringUse:
		err = g.UseKey(req.Fingerprint)
	case proto.KeyringRemove:
		err = g.RemoveKey(req.Fingerprint)
	default:
		err = fmt.Errorf("unknown keyring operation %d", req.Op)
	}
	if err != nil {
		res.Error = strings.TrimPrefix(err.Error(), "gossip: ")
	}
	st := g.Keyring()
	res.Encrypting, res.Primary, res.Keys = st.Encrypting, st.Primary, st.Keys
	return res
}

// checkKeyringRequest rejects a malformed request before it is fanned out.
func checkKeyringRequest(req *proto.KeyringRequest) error {
	switch req.Op {
	case proto.KeyringList:
	case proto.KeyringInstall:
		if len(req.Key) != gossip.KeySize {
			return wire.Errorf(wire.CodeBadRequest, "a gossip key is %d bytes, got %d", gossip.KeySize, len(req.Key))
		}
	case proto.KeyringUse, proto.KeyringRemove:
		if len(req.Fingerprint) < 8 {
			return wire.Errorf(wire.CodeBadRequest, "%s needs a key fingerprint of at least 8 hex characters", req.Op)
		}
	default:
		return wire.Errorf(wire.CodeBadRequest, "unknown keyring operation %d", req.Op)
	}
	return nil
}

// handleKeyringLocal applies a keyring operation to this node only.
func (n *Node) handleKeyringLocal(ctx context.Context, payload []byte) (any, error) {
	var req proto.KeyringRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	if err := checkKeyringRequest(&req); err != nil {
		return nil, err
	}
	res := n.keyringResult(&req)
	return &res, nil
}

// handleKeyring applies a keyring operation to every ring member not
// removed, this one first, and answers one result per member. A dead
// member is reported as not reached: it reads the key file when it starts.
func (n *Node) handleKeyring(ctx context.Context, payload []byte) (any, error) {
	var req proto.KeyringRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	if err := checkKeyringRequest(&req); err != nil {
		return nil, err
	}
	timeout := 5 * time.Second
	if req.TimeoutMs > 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ev := n.log.Info().Str("op", req.Op.String())
	if req.Op == proto.KeyringInstall {
		ev = ev.Str("key", gossip.Fingerprint(req.Key))
	} else if req.Fingerprint != "" {
		ev = ev.Str("key", req.Fingerprint)
	}
	ev.Msg("keyring operation for the cluster")

	body, err := wire.Marshal(&req)
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "encode keyring request: %v", err)
	}
	v := n.view.Load()
	var ids []ring.NodeID
	for id, m := range v.members {
		if m.Status != ring.Removed {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	reply := &proto.KeyringReply{Nodes: make([]proto.KeyringNodeResult, len(ids))}
	var wg sync.WaitGroup
	for i, id := range ids {
		r := &reply.Nodes[i]
		r.Node = string(id)
		m := v.members[id]
		r.Mode = security.Mode(m.Security).String()
		switch {
		case id == n.self:
			*r = n.keyringResult(&req)
			continue
		case !n.alive(id):
			r.Error = "not alive, not reached (it reads its gossip-key-file when it starts)"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, resp, err := n.pool.Call(ctx, m.RPCAddr, proto.KindKeyringLocal, body)
			if err != nil {
				r.Error = err.Error()
				return
			}
			var res proto.KeyringNodeResult
			if err := wire.Unmarshal(resp, &res); err != nil {
				r.Error = "bad reply: " + err.Error()
				return
			}
			*r = res
			r.Node = string(id)
		}()
	}
	wg.Wait()
	return reply, nil
}

// keyringCollector reports the gossip keyring at each scrape, by
// fingerprint only.
type keyringCollector struct {
	n                      *Node
	keys, encrypting, info *prometheus.Desc
}

func newKeyringCollector(n *Node) *keyringCollector {
	return &keyringCollector{
		n: n,
		keys: prometheus.NewDesc("mnemo_gossip_keys",
			"Gossip encryption keys this node holds (the primary and those kept for decryption); 0 with security disabled.", nil, nil),
		encrypting: prometheus.NewDesc("mnemo_gossip_encrypting",
			"1 when this node sends encrypted gossip; a transitional node starts once every member advertises transitional or required.", nil, nil),
		info: prometheus.NewDesc("mnemo_gossip_primary_key_info",
			"The fingerprint (SHA-256 prefix, never the key) of the key gossip encrypts with; value 1.", []string{"fingerprint"}, nil),
	}
}

func (c *keyringCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.keys
	ch <- c.encrypting
	ch <- c.info
}

func (c *keyringCollector) Collect(ch chan<- prometheus.Metric) {
	var st gossip.KeyringStatus
	if g := c.n.gsp.Load(); g != nil {
		st = g.Keyring()
	}
	enc := 0.0
	if st.Encrypting {
		enc = 1
	}
	ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(len(st.Keys)))
	ch <- prometheus.MustNewConstMetric(c.encrypting, prometheus.GaugeValue, enc)
	if st.Primary != "" {
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, st.Primary)
	}
}
