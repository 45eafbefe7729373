package client

import "fmt"

// ConfigError is a Config field that New (or ParseRecords, for Records)
// refuses. Field is the field's name ("ECH"); Value, when set, is the one
// value of it refused (a list's entry), quoted in the message; Err says
// what is wrong.
type ConfigError struct {
	Field string
	Value string
	Err   error
}

func (e *ConfigError) Error() string {
	if e.Value != "" {
		return fmt.Sprintf("client: Config.%s %q: %v", e.Field, e.Value, e.Err)
	}
	return fmt.Sprintf("client: Config.%s: %v", e.Field, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ListenError is a socket Listen or ListenMetrics could not open. Listener
// is the Listeners field it was for: "DNSUDP" (DNS over UDP and TCP),
// "SOCKS", "HTTPProxy" or "Metrics".
type ListenError struct {
	Listener string
	Err      error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("client: Listeners.%s: %v", e.Listener, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }
