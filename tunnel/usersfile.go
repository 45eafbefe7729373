package tunnel

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// maxUsersFile bounds the users file we read.
const maxUsersFile = 16 << 20

type userEntry struct {
	name       string
	digest     [sha256.Size]byte
	maxStreams int // 0: the default
}

// ParseUsersFile checks the contents of a users file. The format is one user
// per line; blank lines and lines starting with '#' are ignored:
//
//	NAME:TOKEN [max-streams=N]
//	NAME:sha256:HEX [max-streams=N]
//
// The second form gives the SHA-256 of the token as 64 hex digits, so the
// file need not hold the token itself. NAME may not contain ':' or spaces.
func ParseUsersFile(data []byte) error {
	_, err := parseUsers(data)
	return err
}

func readUsersFile(path string) ([]userEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tunnel: users file: %w", err)
	}
	if len(data) > maxUsersFile {
		return nil, fmt.Errorf("tunnel: users file %s: larger than %d bytes", path, maxUsersFile)
	}
	es, err := parseUsers(data)
	if err != nil {
		return nil, fmt.Errorf("tunnel: users file %s: %w", path, err)
	}
	return es, nil
}

func parseUsers(data []byte) ([]userEntry, error) {
	var out []userEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		e, err := parseUserLine(fields[0], false)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		for _, opt := range fields[1:] {
			v, ok := strings.CutPrefix(opt, "max-streams=")
			if !ok {
				return nil, fmt.Errorf("line %d: unknown option %q", n, opt)
			}
			if e.maxStreams, err = strconv.Atoi(v); err != nil || e.maxStreams <= 0 {
				return nil, fmt.Errorf("line %d: max-streams must be a positive integer", n)
			}
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseUserLine parses "NAME:TOKEN" or, unless plainOnly, "NAME:sha256:HEX".
// Errors never include the token.
func parseUserLine(s string, plainOnly bool) (userEntry, error) {
	name, token, ok := strings.Cut(s, ":")
	if !ok || name == "" || token == "" {
		return userEntry{}, errors.New(`want NAME:TOKEN`)
	}
	if strings.ContainsAny(name, " \t") {
		return userEntry{}, errors.New("NAME may not contain spaces")
	}
	e := userEntry{name: name}
	if h, ok := strings.CutPrefix(token, "sha256:"); ok && !plainOnly {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return userEntry{}, fmt.Errorf("user %q: sha256: needs 64 hex digits", name)
		}
		copy(e.digest[:], b)
		return e, nil
	}
	e.digest = sha256.Sum256([]byte(token))
	return e, nil
}
