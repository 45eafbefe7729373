package client

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/porta443/porta/doh"
)

// dnsTimeout is the longest a local DNS client waits: past it, SERVFAIL.
const dnsTimeout = 2500 * time.Millisecond

// dnsHandler is the local resolver: local records first, then the
// exchanger (the DoH resolver with its cache, over the tunnel). UDP answers
// are truncated to what the asker can take, so that it retries over TCP.
type dnsHandler struct {
	local     *atomic.Uint64 // answers not from upstream
	records   Records
	bootstrap *bootstrap
	upstream  doh.Exchanger
	log       *slog.Logger
	base      context.Context // Client.Serve's ctx, each query's parent; nil: context.Background()
}

func (h *dnsHandler) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	resp := h.resolve(q)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		resp.Truncate(size)
	}
	if err := w.WriteMsg(resp); err != nil {
		h.log.Debug("dns: write answer", "err", err)
	}
}

func (h *dnsHandler) resolve(q *dns.Msg) *dns.Msg {
	if q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 {
		h.local.Add(1)
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeNotImplemented)
		if len(q.Question) != 1 {
			m.SetRcode(q, dns.RcodeFormatError)
		}
		return m
	}
	if m := h.records.answer(q); m != nil {
		h.local.Add(1)
		return m
	}
	parent := h.base
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, dnsTimeout)
	defer cancel()
	if m := h.bootstrap.answer(ctx, q); m != nil {
		h.local.Add(1)
		return m
	}
	resp, err := h.upstream.Exchange(ctx, q)
	if err != nil || resp == nil {
		h.log.Debug("dns: upstream", "err", err)
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeServerFailure)
		return m
	}
	resp.Id = q.Id
	return resp
}
