package tunnel

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// DefaultMaxStreams is the per-user limit on concurrent tunneled streams
// when neither UsersConfig.MaxStreams nor the users file says otherwise.
const DefaultMaxStreams = 1024

// DefaultMaxUDPFlows is the per-user limit on concurrent CONNECT-UDP flows
// unless UsersConfig.MaxUDPFlows says otherwise. Each flow holds a UDP
// socket on the server, so it is kept well below the stream limit.
const DefaultMaxUDPFlows = 256

// NewToken returns a new random token: 32 bytes from crypto/rand, in
// unpadded URL-safe base64 (43 printable characters, never a colon).
func NewToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand panics if the system cannot provide randomness)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// UsersConfig says where tunnel users come from. The zero value has no users.
type UsersConfig struct {
	// Users are "NAME:TOKEN" entries, as given by --user. They are fixed
	// for the life of the Users; Reload does not touch them.
	Users []string
	// File, if set, is a users file (see ParseUsersFile for the format),
	// read by NewUsers and again by every Reload.
	File string
	// MaxStreams is each user's limit on concurrent streams unless the
	// user's line in File says otherwise. Zero means DefaultMaxStreams.
	MaxStreams int
	// MaxUDPFlows is each user's limit on concurrent CONNECT-UDP flows
	// (which count as streams too). Zero means DefaultMaxUDPFlows.
	MaxUDPFlows int
}

// Users is the set of accounts allowed to use the tunnel, with their live
// counters. It is safe for concurrent use; Reload swaps in a new set from
// the file atomically, and counters of users that remain carry over.
type Users struct {
	cfg    UsersConfig
	fixed  []userEntry
	dummy  [sha256.Size]byte // compared against when the name is unknown
	active atomic.Pointer[map[string]*user]

	mu       sync.Mutex // serializes Reload and guards counters
	counters map[string]*userCounters
}

// UserStats is a snapshot of one user's counters.
type UserStats struct {
	Name      string
	Streams   int64  // currently open streams
	Total     uint64 // streams opened since start
	BytesUp   uint64 // client to target
	BytesDown uint64 // target to client
}

type user struct {
	name       string
	digest     [sha256.Size]byte
	maxStreams int64
	maxFlows   int64 // CONNECT-UDP flows
	c          *userCounters
}

type userCounters struct {
	streams   atomic.Int64
	flows     atomic.Int64 // CONNECT-UDP flows, a subset of streams
	total     atomic.Uint64
	bytesUp   atomic.Uint64
	bytesDown atomic.Uint64
}

// NewUsers validates cfg, reads cfg.File if set, and returns the users.
func NewUsers(cfg UsersConfig) (*Users, error) {
	if cfg.MaxStreams < 0 {
		return nil, fmt.Errorf("tunnel: MaxStreams %d is negative", cfg.MaxStreams)
	}
	if cfg.MaxUDPFlows < 0 {
		return nil, fmt.Errorf("tunnel: MaxUDPFlows %d is negative", cfg.MaxUDPFlows)
	}
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxUDPFlows == 0 {
		cfg.MaxUDPFlows = DefaultMaxUDPFlows
	}
	u := &Users{cfg: cfg, counters: map[string]*userCounters{}}
	rand.Read(u.dummy[:])
	for i, s := range cfg.Users {
		e, err := parseUserLine(s, true)
		if err != nil {
			return nil, fmt.Errorf("tunnel: user %d: %w", i+1, err)
		}
		u.fixed = append(u.fixed, e)
	}
	if err := u.Reload(); err != nil {
		return nil, err
	}
	return u, nil
}

// Reload re-reads the users file (the server calls it on SIGHUP). On error
// the previous set stays in force.
func (u *Users) Reload() error {
	var fromFile []userEntry
	if u.cfg.File != "" {
		var err error
		if fromFile, err = readUsersFile(u.cfg.File); err != nil {
			return err
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	m := make(map[string]*user, len(u.fixed)+len(fromFile))
	for _, e := range append(append([]userEntry(nil), fromFile...), u.fixed...) {
		if _, dup := m[e.name]; dup {
			return fmt.Errorf("tunnel: user %q is defined twice", e.name)
		}
		c := u.counters[e.name]
		if c == nil {
			c = new(userCounters)
			u.counters[e.name] = c
		}
		max := int64(u.cfg.MaxStreams)
		if e.maxStreams > 0 {
			max = int64(e.maxStreams)
		}
		m[e.name] = &user{name: e.name, digest: e.digest, maxStreams: max, maxFlows: int64(u.cfg.MaxUDPFlows), c: c}
	}
	u.active.Store(&m)
	return nil
}

// Len reports how many users are active.
func (u *Users) Len() int {
	if u == nil {
		return 0
	}
	return len(*u.active.Load())
}

// Stats returns the counters of every active user, sorted by name.
func (u *Users) Stats() []UserStats {
	if u == nil {
		return nil
	}
	m := *u.active.Load()
	out := make([]UserStats, 0, len(m))
	for _, us := range m {
		out = append(out, UserStats{
			Name:      us.name,
			Streams:   us.c.streams.Load(),
			Total:     us.c.total.Load(),
			BytesUp:   us.c.bytesUp.Load(),
			BytesDown: us.c.bytesDown.Load(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// authenticate returns the user whose name and token these are. The token's
// digest is compared in constant time, against a random digest when the
// name is unknown, so timing says nothing about which names exist.
func (u *Users) authenticate(name, token string) (*user, bool) {
	return u.check([]byte(name), []byte(token))
}

// check is authenticate without allocating: the token's digest is
// compared in constant time, with a stand-in's when the name is unknown.
func (u *Users) check(name, token []byte) (*user, bool) {
	if u == nil {
		return nil, false
	}
	d := sha256.Sum256(token)
	us, found := (*u.active.Load())[string(name)]
	want := &u.dummy
	if found {
		want = &us.digest
	}
	if subtle.ConstantTimeCompare(d[:], want[:]) != 1 || !found {
		return nil, false
	}
	return us, true
}

// errTooManyStreams is returned by acquire when a user is at the limit.
var errTooManyStreams = errors.New("tunnel: too many concurrent streams for this user")

// acquire counts a new stream for us, or refuses it at the limit.
func (us *user) acquire() error {
	if us.c.streams.Add(1) > us.maxStreams {
		us.c.streams.Add(-1)
		return errTooManyStreams
	}
	us.c.total.Add(1)
	return nil
}

func (us *user) release() { us.c.streams.Add(-1) }

// errTooManyFlows is returned by acquireFlow when a user is at the limit.
var errTooManyFlows = errors.New("tunnel: too many concurrent UDP flows for this user")

// acquireFlow counts a new CONNECT-UDP flow for us (on top of its stream),
// or refuses it at the limit.
func (us *user) acquireFlow() error {
	if us.c.flows.Add(1) > us.maxFlows {
		us.c.flows.Add(-1)
		return errTooManyFlows
	}
	return nil
}

func (us *user) releaseFlow() { us.c.flows.Add(-1) }
