package client_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/porta443/porta/client"
	"github.com/porta443/porta/internal/relay/relaytest"
	"github.com/porta443/porta/internal/socksudp"
	"github.com/porta443/porta/internal/testenv"
)

// TestLogsKeepNamesAndTargetsPrivate: at level info, the client's log
// shows none of the names asked of its resolver, none of the targets of
// its proxies and no URL with a query string, whether the lookups hit,
// miss or fail, and whether the tunnels work, are refused or find the
// server down.
func TestLogsKeepNamesAndTargetsPrivate(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		logs, log := testenv.NewLogs(slog.LevelInfo)
		logs.CaptureStandardLog(t)
		s := newStackWith(t, func(s *stack, cfg *client.Config) { setTransport(cfg, transport); cfg.Logger = log })
		target, sum := relaytest.FileServer(t, 64<<10)
		_, port, _ := net.SplitHostPort(target)
		closedNum := closedPort(t)
		closed := itoa(closedNum)
		private := testenv.Private{
			Names: []string{"www.example.test", "files.example.test", "privacy-nx.example.test", "privacy-down.example.test", "privacy-gone.example.test"},
			Ports: []string{port, closed},
			Words: []string{"privacy-query"},
		}

		for _, args := range [][]string{
			{"www.example.test"}, {"www.example.test"}, // a miss, then a hit
			{"+tcp", "files.example.test", "AAAA"},
			{"privacy-nx.example.test"}, {"privacy-nx.example.test"}, // NXDOMAIN, then from the cache
		} {
			if out, err := s.dig(args...); err != nil || !strings.Contains(out, "status: NOERROR") && !strings.Contains(out, "status: NXDOMAIN") {
				t.Fatalf("dig %v: %v\n%s", args, err, out)
			}
		}
		file := "files.example.test:" + port + "/file?privacy-query=1"
		for _, args := range [][]string{
			{"--socks5-hostname", s.socksAddr, "http://" + file},
			{"-x", "http://" + s.httpAddr, "http://" + file},
			{"-p", "-x", "http://" + s.httpAddr, "http://" + file},
		} {
			if got, _, err := relaytest.Curl(t, args...); err != nil || got != sum {
				t.Fatalf("curl %v: %v (digest match %v)", args, err, got == sum)
			}
		}
		// Refused by the server: a closed port, a name that does not exist.
		for _, host := range []string{"files.example.test", "privacy-nx.example.test"} {
			socksConnect(t, s.socksAddr, host, closedNum)
			httpConnect(t, s.httpAddr, host+":"+closed)
			relaytest.Curl(t, "--max-time", "10", "-x", "http://"+s.httpAddr, "http://"+host+":"+closed+"/?privacy-query=2")
		}

		// UDP flows through SOCKS5 to a name that answers and to one
		// that does not exist.
		echo := udpEcho(t)
		udpPort := itoa(uint16(echo.Port))
		private.Ports = append(private.Ports, udpPort)
		pc := associate(t, s)
		for _, host := range []string{"files.example.test", "privacy-nx.example.test"} {
			if _, err := pc.WriteTo([]byte("privacy"), socksudp.Name(net.JoinHostPort(host, udpPort))); err != nil {
				t.Fatal(err)
			}
		}
		if transport != "h2std" { // net/http's HTTP/2 client carries no UDP
			pc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, from, err := pc.ReadFrom(make([]byte, 100)); err != nil || from.String() != "files.example.test:"+udpPort {
				t.Fatalf("UDP through SOCKS5: from %v, %v", from, err)
			}
		}

		// The server is down: the lookup and the tunnels fail.
		s.stopServer()
		if out, err := s.dig("privacy-down.example.test"); err != nil || !strings.Contains(out, "status: SERVFAIL") {
			t.Fatalf("dig while the server is down: %v\n%s", err, out)
		}
		relaytest.Curl(t, "--max-time", "10", "--socks5-hostname", s.socksAddr, "http://privacy-gone.example.test:"+port+"/?privacy-query=3")
		pc.WriteTo([]byte("privacy"), socksudp.Name("privacy-gone.example.test:"+udpPort))
		relaytest.Curl(t, "--max-time", "10", "-x", "http://"+s.httpAddr, "http://privacy-gone.example.test:"+port+"/?privacy-query=4")
		httpConnect(t, s.httpAddr, "privacy-gone.example.test:"+port)
		s.startServer(s.serverAddr) // for the stack's cleanup

		if lines := strings.Join(logs.Lines(), "\n"); !strings.Contains(lines, "upstreams failed") {
			t.Errorf("the failed lookup was not logged; the log:\n%s", lines)
		}
		for _, l := range logs.Leaks(private) {
			t.Errorf("logged at info: %s", l)
		}
	})
}
