package server

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/porta443/porta/internal/selfsigned"
)

const (
	// maintainEvery is how often a serving server looks at its
	// certificate's dates.
	maintainEvery = time.Hour
	// expiryWarning is how close to its expiry a --cert certificate
	// gets before the log warns, and expiryWarnEvery how often it warns
	// again while serving (each Reload warns too).
	expiryWarning   = 14 * 24 * time.Hour
	expiryWarnEvery = 24 * time.Hour
)

// watch runs maintain every maintainEvery until the returned stop is
// called; stop returns once the goroutine has ended.
func (c *certSource) watch() (stop func()) { return every(maintainEvery, c.maintain) }

// every runs f with the time every d on a goroutine of its own until the
// returned stop is called; stop returns once that goroutine has ended.
func every(d time.Duration, f func(now time.Time)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				f(now)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// maintain renews a self-signed certificate that is due, and warns (at
// most once per expiryWarnEvery) when the certificate in use is near or
// past its expiry: a --cert one that nobody replaced, or a self-signed
// one whose renewal failed.
func (c *certSource) maintain(now time.Time) {
	if c.current.Load() == nil {
		return // ACME alone: certmagic looks after its certificates
	}
	if c.selfSigned && renewDue(c.current.Load().Leaf, now) {
		if err := c.renew(now); err != nil {
			c.log.Warn("renewing the self-signed certificate failed; trying again in an hour", "err", err)
		}
	}
	if now.UnixNano()-c.warnedAt.Load() >= int64(expiryWarnEvery) && c.warnExpiry(now) {
		c.warnedAt.Store(now.UnixNano())
	}
}

// warnExpiry logs a warning if the certificate in use expires within
// expiryWarning or has expired, and reports whether it did.
func (c *certSource) warnExpiry(now time.Time) bool {
	leaf := c.current.Load().Leaf
	left := leaf.NotAfter.Sub(now)
	if left >= expiryWarning {
		return false
	}
	msg := "certificate expires soon"
	if left <= 0 {
		msg = "certificate has expired"
	}
	c.log.Warn(msg, "file", c.certFile, "not-after", leaf.NotAfter.UTC().Format(time.RFC3339),
		"days-left", int(left.Hours()/24))
	return true
}

// renewDue reports whether a self-signed certificate is to be issued
// again: once a third of its life is left, as ACME clients renew (so it
// never comes within the 60 days where testssl.sh begins to warn), or at
// once if it was made for longer than selfsigned.Validity.
func renewDue(leaf *x509.Certificate, now time.Time) bool {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return life > selfsigned.Validity || !now.Before(leaf.NotAfter.Add(-life/3))
}

// renew issues the self-signed certificate again with the same key, so
// its pin stays, and puts it in use and on disk.
func (c *certSource) renew(now time.Time) error {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return err
	}
	renewed, err := selfsigned.Renew(certPEM, keyPEM, now, c.echName)
	if err != nil {
		return err
	}
	pair, err := selfsigned.Pair(renewed, keyPEM)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(c.certFile, renewed, 0o644); err != nil {
		return err
	}
	c.current.Store(&pair)
	c.log.Info("self-signed certificate renewed", "not-after", pair.Leaf.NotAfter.UTC().Format(time.RFC3339),
		"pin", selfsigned.Pin(pair.Leaf))
	return nil
}

// writeFileAtomic replaces name with data so that a reader sees the old
// file or the new one, never a part.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
