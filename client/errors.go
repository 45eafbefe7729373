package client

import "fmt"

// ConfigError is a Config field that New refuses. Field is the field's
// name ("ECH"); Err says what is wrong with its value.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("client: Config.%s: %v", e.Field, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }
