package httpproxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/porta443/porta/internal/relay/relaytest"
)

func TestPAC(t *testing.T) {
	get := func(t *testing.T, proxy, method string) (*http.Response, string) {
		req, _ := http.NewRequestWithContext(t.Context(), method, "http://"+proxy+"/proxy.pac", nil)
		resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	t.Run("proxies", func(t *testing.T) {
		proxy := startServer(t, Config{Dial: relaytest.DialDirect, PACProxies: []string{"PROXY 127.0.0.1:8080", "SOCKS5 127.0.0.1:1080"}})
		resp, body := get(t, proxy, http.MethodGet)
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-ns-proxy-autoconfig" {
			t.Fatalf("Content-Type %q", ct)
		}
		for _, want := range []string{`return "PROXY 127.0.0.1:8080; SOCKS5 127.0.0.1:1080";`, `isPlainHostName(host)`, `return "DIRECT";`} {
			if !strings.Contains(body, want) {
				t.Errorf("PAC lacks %q:\n%s", want, body)
			}
		}
		if strings.Count(body, "DIRECT") != 1 {
			t.Errorf("DIRECT for more than local hosts:\n%s", body)
		}
		if resp, body := get(t, proxy, http.MethodHead); resp.StatusCode != 200 || body != "" {
			t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
		}
		if resp, _ := get(t, proxy, http.MethodPost); resp.StatusCode != 404 {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
	})
	t.Run("through itself", func(t *testing.T) {
		rec := &recordingDial{Target: "127.0.0.1:1"}
		proxy := startServer(t, Config{Dial: rec.Dial})
		_, out, err := relaytest.Curl(t, "-x", "http://"+proxy, "http://"+proxy+"/proxy.pac")
		if err != nil || !strings.Contains(string(out), "PROXY "+proxy) {
			t.Fatalf("%v: %s", err, out)
		}
		if _, _, err := relaytest.Curl(t, "-x", "http://"+proxy, "http://"+proxy+"/other"); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("other path through itself: %v", err)
		}
		if rec.Count() != 0 {
			t.Fatalf("dialed %q", rec.Last())
		}
	})
	t.Run("whole file", func(t *testing.T) {
		const pac = "function FindProxyForURL(url, host) { return \"SOCKS5 127.0.0.1:1080\"; }\n"
		proxy := startServer(t, Config{Dial: relaytest.DialDirect, PAC: pac})
		if _, body := get(t, proxy, http.MethodGet); body != pac {
			t.Fatalf("got %q", body)
		}
	})
}
