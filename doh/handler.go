package doh

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh/cache"
)

// Handler serves DNS over HTTPS (RFC 8484): GET and HEAD with ?dns= (base64url;
// padding is tolerated), POST with an application/dns-message body. Every DNS
// outcome is HTTP 200; the status codes are for requests that carry no
// usable query. It does not look at the path: route to it what should be
// DoH. The zero value needs only Resolver.
type Handler struct {
	// Resolver answers the queries. A *Resolver is served from its
	// wire-form cache without unpacking anything.
	Resolver Exchanger
	// Logger receives request errors, never query content. nil discards.
	Logger *slog.Logger
	// Own, if set, answers queries for the names it owns itself, ahead of
	// the Resolver: porta's server answers HTTPS queries for its own
	// names this way.
	Own OwnRecords

	scratch sync.Pool // of *scratch

	counts handlerCounters // Stats
}

// scratch is one request's buffers.
type scratch struct {
	enc []byte
	in  []byte
	out []byte
	q   query
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.fail(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	// A request in HTTP/3 0-RTT data can be replayed: only the idempotent
	// methods are served there (RFC 8470 §5.2).
	if r.TLS != nil && !r.TLS.HandshakeComplete && r.Method == http.MethodPost {
		h.fail(w, http.StatusTooEarly, "POST is not served in 0-RTT")
		return
	}
	if !accepts(r.Header["Accept"]) {
		h.fail(w, http.StatusNotAcceptable, "answers are "+MediaType)
		return
	}
	s, _ := h.scratch.Get().(*scratch)
	if s == nil {
		s = &scratch{in: make([]byte, 0, 512), out: make([]byte, 0, 512)}
	}
	defer h.putScratch(s)
	var status int
	var why string
	if r.Method == http.MethodPost {
		status, why = s.readBody(w, r)
	} else {
		status, why = s.decodeQuery(r.URL.RawQuery)
	}
	if status != 0 {
		h.fail(w, status, why)
		return
	}
	q := &s.q
	if err := parseQuery(s.in, q); err != nil {
		h.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	out, maxAge, err := h.answer(r.Context(), s, q)
	if err != nil {
		if r.Context().Err() == nil {
			h.log().Debug("doh: no answer", "err", err)
			h.fail(w, http.StatusServiceUnavailable, "resolver unavailable")
		} else {
			h.counts.count(0)
		}
		return
	}
	h.counts.count(http.StatusOK)
	s.out = out
	// Direct assignment with one backing array: Header().Set would
	// allocate a slice per header on this, the hot path. net/http adds
	// Content-Length itself for a body written in one go.
	var cc [24]byte
	vals := make([]string, 2)
	vals[0] = MediaType
	vals[1] = string(strconv.AppendUint(append(cc[:0], "max-age="...), uint64(maxAge), 10))
	hdr := w.Header()
	hdr["Content-Type"] = vals[0:1:1]
	hdr["Cache-Control"] = vals[1:2:2]
	if r.Method == http.MethodHead {
		hdr["Content-Length"] = []string{strconv.Itoa(len(out))}
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(out)
	}
}

func (h *Handler) answer(ctx context.Context, s *scratch, q *query) ([]byte, uint32, error) {
	if rrs, ok := h.own(s.in, q); ok {
		return exchangeWire(ctx, ownAnswer(rrs), s.out[:0], s.in, q)
	}
	if res, ok := h.Resolver.(*Resolver); ok {
		return res.answer(ctx, s.out[:0], s.in, q)
	}
	if h.Resolver == nil {
		return nil, 0, errors.New("doh: Handler has no Resolver")
	}
	return exchangeWire(ctx, h.Resolver, s.out[:0], s.in, q)
}

// exchangeWire answers through any Exchanger: unpack, exchange, and pack
// the answer with the query's ID, untruncated and padded as asked.
func exchangeWire(ctx context.Context, ex Exchanger, dst, msg []byte, q *query) ([]byte, uint32, error) {
	m := new(dns.Msg)
	if err := m.Unpack(msg); err != nil {
		return appendError(dst, q, msg, dns.RcodeFormatError, nil), 0, nil
	}
	resp, err := ex.Exchange(ctx, m)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, err
		}
		ede := edeOption(dns.ExtendedErrorCodeOther, "resolver failed")
		return appendError(dst, q, msg, dns.RcodeServerFailure, ede), 0, nil
	}
	resp = resp.Copy() // an Exchanger may hand out a message it keeps
	resp.Id = q.id
	resp.Truncated = false
	maxAge := cache.Lifetime(resp)
	if q.padded {
		if opt := resp.IsEdns0(); opt != nil {
			pad := &dns.EDNS0_PADDING{}
			opt.Option = append(opt.Option, pad)
			n := resp.Len()
			pad.Padding = make([]byte, (paddingBlock-n%paddingBlock)%paddingBlock)
		}
	}
	out, err := resp.PackBuffer(dst)
	if err != nil {
		return nil, 0, err
	}
	return out, maxAge, nil
}

func (h *Handler) putScratch(s *scratch) {
	if cap(s.in) > 4096 || cap(s.out) > 4096 || cap(s.enc) > 4096 {
		return // let big buffers go
	}
	h.scratch.Put(s)
}

func (h *Handler) fail(w http.ResponseWriter, status int, why string) {
	h.counts.count(status)
	http.Error(w, strconv.Itoa(status)+" "+http.StatusText(status)+": "+why, status)
}

func (h *Handler) log() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}
