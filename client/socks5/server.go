package socks5

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/porta443/porta/internal/relay"
)

// DialFunc opens a connection to a target; see relay.DialFunc.
type DialFunc = relay.DialFunc

// Establisher is implemented by a connection that Dial returns before the
// target answered; see Config.NoFastOpen.
type Establisher = relay.Establisher

// Config configures a Server. The zero value of each field is its default.
type Config struct {
	// Dial reaches targets. Required.
	//
	// With fast open (the default) the server replies success as soon as
	// Dial returns, and a failure that the connection reports later, on
	// its first Read or Write, closes the client's connection.
	Dial DialFunc
	// DialUDP, if set, serves UDP ASSOCIATE: it is called as
	// DialUDP(ctx, "udp", "host:port") once per target of an association,
	// with a name unresolved, and returns a connection with datagram
	// semantics, as net.Dial("udp") does: each Write sends one datagram,
	// each Read returns one. Its Write should drop rather than wait: one
	// goroutine writes an association's datagrams to all its targets.
	// Nil: UDP ASSOCIATE is answered "command not supported".
	DialUDP DialFunc
	// MaxUDPFlows bounds the targets one UDP association talks to at
	// once; a datagram to one more is dropped. Zero: 256.
	MaxUDPFlows int
	// UDPIdleTimeout closes a UDP association's flow to a target after
	// this long without a datagram either way. Zero: 2 minutes.
	UDPIdleTimeout time.Duration
	// NoFastOpen makes the server wait for the target's answer before it
	// replies: if the connection Dial returns is an Establisher, its
	// Established error is the answer. Either error is mapped to the reply
	// code by ReplyCode.
	NoFastOpen bool
	// Users, if not empty, requires RFC 1929 username/password
	// authentication with one of these user → password pairs (compared in
	// constant time). Empty: no authentication, unless Authenticate is set.
	Users map[string]string
	// Authenticate, if set, requires username/password authentication and
	// decides it. It may not be set together with Users.
	Authenticate func(user, password string) bool
	// HandshakeTimeout bounds reading the greeting, authentication and
	// request, and writing the reply. Zero: 10 seconds.
	HandshakeTimeout time.Duration
	// DialTimeout bounds Dial and DialUDP, and with NoFastOpen the wait
	// for the target's answer. Zero: 30 seconds.
	DialTimeout time.Duration
	// Logger receives per-connection events at debug level. Nil: discard.
	Logger *slog.Logger
}

// Server is a SOCKS5 server. Create it with New.
type Server struct {
	cfg   Config
	auth  func(user, password string) bool // nil: no authentication
	log   *slog.Logger
	relay relay.Relay
	group relay.Group
	udp   udpCounts
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Dial == nil {
		return nil, errors.New("socks5: no Dial")
	}
	if len(cfg.Users) > 0 && cfg.Authenticate != nil {
		return nil, errors.New("socks5: both Users and Authenticate set")
	}
	if cfg.HandshakeTimeout < 0 || cfg.DialTimeout < 0 || cfg.UDPIdleTimeout < 0 {
		return nil, errors.New("socks5: negative timeout")
	}
	if cfg.MaxUDPFlows < 0 {
		return nil, errors.New("socks5: negative MaxUDPFlows")
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 30 * time.Second
	}
	if cfg.MaxUDPFlows == 0 {
		cfg.MaxUDPFlows = 256
	}
	if cfg.UDPIdleTimeout == 0 {
		cfg.UDPIdleTimeout = 2 * time.Minute
	}
	s := &Server{cfg: cfg, auth: cfg.Authenticate, log: cfg.Logger}
	if len(cfg.Users) > 0 {
		s.auth = usersAuth(cfg.Users)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// usersAuth checks a password in constant time, and takes as long for an
// unknown user.
func usersAuth(users map[string]string) func(string, string) bool {
	m := make(map[string][]byte, len(users))
	for u, p := range users {
		m[u] = []byte(p)
	}
	return func(user, password string) bool {
		want, ok := m[user]
		if !ok {
			want = []byte(password + "\x00") // never equal
		}
		return subtle.ConstantTimeCompare(want, []byte(password)) == 1 && ok
	}
}

// Serve accepts connections on ln until Shutdown or Close. ctx is only the
// parent of every connection's context, and so of every Dial's (as
// http.Server's BaseContext): canceling it cancels those, but does not
// stop Serve. The caller owns ln, but Shutdown and Close close it. Serve
// returns http.ErrServerClosed once the server is closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.group.Serve(ctx, ln, s.serveConn)
}

// Shutdown stops accepting, waits until ctx is done for the connections in
// flight to end, then closes the rest. Every connection goroutine has
// ended when it returns.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.group.Shutdown(ctx)
}

// Close stops accepting and closes every connection at once, and waits for
// their goroutines.
func (s *Server) Close() error {
	return s.group.Close()
}
