package server

import "fmt"

// ConfigError is a Config field that New refuses. Field is the field's
// name ("HSTSMaxAge"); Value, when set, is the one value of it refused (a
// path, a list's entry), quoted in the message; Err says what is wrong.
type ConfigError struct {
	Field string
	Value string
	Err   error
}

func (e *ConfigError) Error() string {
	if e.Value != "" {
		return fmt.Sprintf("server: Config.%s %q: %v", e.Field, e.Value, e.Err)
	}
	return fmt.Sprintf("server: Config.%s: %v", e.Field, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// FieldsError is about several Config fields together ("SiteDir and
// SiteProxy: give one"). Format words it with a %s for each of Fields in
// turn, so that a caller can put its own names for the fields in their
// place. Values, when set, are the fields' values, each shown after its
// name; Err, when set, is what went wrong with them.
type FieldsError struct {
	Format string
	Fields []string
	Values []string
	Err    error
}

func (e *FieldsError) Error() string {
	return "server: " + e.Words(func(field string) string { return "Config." + field })
}

// Words is the message with name(field) for each field.
func (e *FieldsError) Words(name func(field string) string) string {
	names := make([]any, len(e.Fields))
	for i, f := range e.Fields {
		names[i] = name(f)
		if i < len(e.Values) {
			names[i] = name(f) + " " + e.Values[i]
		}
	}
	msg := fmt.Sprintf(e.Format, names...)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *FieldsError) Unwrap() error { return e.Err }

// ListenError is a socket Listen or ListenMetrics could not open. Listener
// is the Listeners field it was for: "TCP" (TCP and UDP), "HTTP" or
// "Metrics".
type ListenError struct {
	Listener string
	Err      error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("server: Listeners.%s: %v", e.Listener, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }
