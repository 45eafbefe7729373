package tunnel

import (
	"context"
	"errors"
	"time"
)

// rememberFailure is how long auto avoids a transport that failed to
// connect to a server.
const rememberFailure = 5 * time.Minute

// connectServer connects to si with the configured transport, and ECH if
// the Dialer has it.
func (d *Dialer) connectServer(si *serverInfo) (session, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.ConnectTimeout)
	defer cancel()
	return d.connectECH(ctx, si, d.connectTransport)
}

// connectTransport makes one connect to si with the configured transport.
func (d *Dialer) connectTransport(ctx context.Context, si *serverInfo) (session, error) {
	switch d.cfg.Transport {
	case "h2":
		return asSession(d.connectH2(ctx, si))
	case "h3":
		return asSession(d.connectH3(ctx, si))
	}
	return d.connectAuto(ctx, si)
}

// asSession returns a nil session, not a session holding a nil pointer,
// when connecting failed: the caller tests the session against nil.
func asSession[S session](s S, err error) (session, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}

type connectResult struct {
	s    session
	err  error
	took time.Duration
	h3   bool
}

// connectAuto races HTTP/2 and HTTP/3 to si and keeps one of them:
// HTTP/2 if it connects, since Go moves several times more bytes per CPU
// second over it than over QUIC; HTTP/3 if HTTP/2 fails (TCP blocked) or
// is still not up by twice HTTP/3's handshake time plus 50 ms (a sign
// of a lossy or throttled TCP path). A transport that failed is skipped for
// rememberFailure unless the other has failed too.
func (d *Dialer) connectAuto(ctx context.Context, si *serverInfo) (session, error) {
	d.mu.Lock()
	now := time.Now()
	tryH2 := now.Sub(si.h2Failed) > rememberFailure
	tryH3 := now.Sub(si.h3Failed) > rememberFailure
	if !tryH2 && !tryH3 {
		tryH2, tryH3 = true, true
	}
	d.mu.Unlock()

	results := make(chan connectResult, 2)
	start := time.Now()
	pending := 0
	if tryH2 {
		pending++
		go func() {
			s, err := d.connectH2(ctx, si)
			r := connectResult{err: err, took: time.Since(start)}
			if err == nil {
				r.s = s
			}
			results <- r
		}()
	}
	if tryH3 {
		pending++
		go func() {
			s, err := d.connectH3(ctx, si)
			r := connectResult{err: err, took: time.Since(start), h3: true}
			if err == nil {
				r.s = s
			}
			results <- r
		}()
	}

	var h3 session
	var errs []error
	var grace <-chan time.Time
	var chosen session
	for pending > 0 && chosen == nil {
		select {
		case r := <-results:
			pending--
			if r.err != nil {
				errs = append(errs, r.err)
				if tlsVerdict(r.err) {
					continue // the transport works: connectECH may try again
				}
				d.mu.Lock()
				if r.h3 {
					si.h3Failed = time.Now()
				} else {
					si.h2Failed = time.Now()
				}
				d.mu.Unlock()
				continue
			}
			if !r.h3 {
				chosen = r.s
				continue
			}
			h3 = r.s
			grace = time.After(r.took + 50*time.Millisecond)
		case <-grace:
			chosen = h3
		}
	}
	if chosen == nil {
		chosen = h3
	}
	// Close the loser when it arrives; the Dialer owns the goroutine.
	if pending > 0 {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for ; pending > 0; pending-- {
				if r := <-results; r.s != nil && r.s != chosen {
					r.s.close()
				}
			}
		}()
	}
	if h3 != nil && h3 != chosen {
		h3.close()
	}
	if chosen == nil {
		return nil, errors.Join(errs...)
	}
	return chosen, nil
}
