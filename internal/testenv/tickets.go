package testenv

import (
	"crypto/tls"
	"testing"
	"time"
)

// TicketCache is a client session cache that tells when a session ticket
// has come: the server sends it after the handshake, so a test that
// resumes (0-RTT) waits for it instead of for time to pass.
type TicketCache struct {
	tls.ClientSessionCache
	got chan struct{} // a value per ticket stored
}

// NewTicketCache is a TicketCache of a few sessions.
func NewTicketCache() *TicketCache {
	return &TicketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), got: make(chan struct{}, 16)}
}

func (c *TicketCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil { // nil removes one
		select {
		case c.got <- struct{}{}:
		default:
		}
	}
}

// Wait waits for a ticket to be stored, failing t after 10 s.
func (c *TicketCache) Wait(t testing.TB) {
	t.Helper()
	select {
	case <-c.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no session ticket came")
	}
}
