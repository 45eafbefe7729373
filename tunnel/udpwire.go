package tunnel

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/porta443/porta/internal/masque"
	"github.com/quic-go/quic-go"
)

// udpStream is one side of a CONNECT-UDP flow's request stream, the same
// on the server and the client: DATAGRAM capsules on the stream (HTTP/2,
// and on HTTP/3 whatever a QUIC datagram cannot carry), and HTTP
// Datagrams where the transport has them (HTTP/3).
type udpStream interface {
	// capsules is the stream, which carries DATAGRAM capsules and, at
	// its end, the end of the flow.
	capsules() io.Reader
	// datagrams receives HTTP Datagrams; nil on HTTP/2.
	datagrams() func(ctx context.Context) ([]byte, error)
	// send sends one UDP payload to the peer; safe for concurrent use.
	send(p []byte) error
}

// receive delivers the UDP payloads that come on s (each valid only
// during the call) until the capsule stream ends: nil when the peer ended
// it cleanly, else why it failed. tooLarge is called for each DATAGRAM
// capsule over MaxUDPPayload, which is skipped.
func receive(ctx context.Context, s udpStream, deliver func([]byte), tooLarge func()) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if recv := s.datagrams(); recv != nil {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // before wg.Wait
		wg.Go(func() {
			for {
				p, err := recv(ctx)
				if err != nil {
					return
				}
				deliver(p)
			}
		})
	}
	cr := masque.NewCapsuleReader(s.capsules(), MaxUDPPayload)
	for {
		p, err := cr.NextDatagram()
		switch {
		case errors.Is(err, masque.ErrCapsuleTooLarge):
			tooLarge()
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		default:
			deliver(p)
		}
	}
}

// capsuleWriter sends UDP payloads as DATAGRAM capsules with write, one
// at a time.
type capsuleWriter struct {
	write func([]byte) error
	mu    sync.Mutex
	buf   []byte
}

func (w *capsuleWriter) sendCapsule(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = masque.AppendDatagramCapsule(w.buf[:0], p)
	return w.write(w.buf)
}

// h2UDP carries a flow in DATAGRAM capsules on an HTTP/2 stream.
type h2UDP struct {
	r io.Reader
	capsuleWriter
}

func newH2UDP(r io.Reader, write func([]byte) error) *h2UDP {
	return &h2UDP{r: r, capsuleWriter: capsuleWriter{write: write}}
}

func (s *h2UDP) capsules() io.Reader                                  { return s.r }
func (s *h2UDP) datagrams() func(ctx context.Context) ([]byte, error) { return nil }
func (s *h2UDP) send(p []byte) error                                  { return s.sendCapsule(p) }

// h3DatagramStream is what an HTTP/3 request stream offers on either side
// (quic-go's http3.Stream on the server, http3.RequestStream on the
// client).
type h3DatagramStream interface {
	io.ReadWriter
	SendDatagram(b []byte) error
	ReceiveDatagram(ctx context.Context) ([]byte, error)
}

// h3UDP carries a flow in HTTP Datagrams (QUIC DATAGRAM frames, context
// ID 0), and in DATAGRAM capsules on the stream for a payload that does
// not fit in a QUIC datagram, or that is sent before the datagrams can go
// (a client before the server's answer: a datagram that arrives before
// its stream is dropped by the receiver, a capsule is not).
type h3UDP struct {
	str h3DatagramStream
	capsuleWriter
	datagramsOn atomic.Bool
	dmu         sync.Mutex
	dbuf        []byte
}

func newH3UDP(str h3DatagramStream, datagramsOn bool) *h3UDP {
	s := &h3UDP{str: str}
	s.write = func(b []byte) error {
		_, err := str.Write(b)
		return err
	}
	s.datagramsOn.Store(datagramsOn)
	return s
}

func (s *h3UDP) capsules() io.Reader { return s.str }
func (s *h3UDP) datagrams() func(ctx context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		for {
			b, err := s.str.ReceiveDatagram(ctx)
			if err != nil {
				return nil, err
			}
			if p, ok := masque.ParseDatagram(b); ok {
				return p, nil // another context ID is skipped (RFC 9298 §4)
			}
		}
	}
}

func (s *h3UDP) send(p []byte) error {
	if s.datagramsOn.Load() {
		s.dmu.Lock()
		s.dbuf = masque.AppendDatagram(s.dbuf[:0], p)
		err := s.str.SendDatagram(s.dbuf) // quic-go copies it
		s.dmu.Unlock()
		if _, tooLarge := errors.AsType[*quic.DatagramTooLargeError](err); !tooLarge {
			return err
		}
	}
	return s.sendCapsule(p)
}
