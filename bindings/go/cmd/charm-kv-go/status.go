package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// status prints the fields of `charm-kv status`, one `field: value` per line, every
// field always present, with the same names and values as the Rust command.
func (c *cli) status(args []string) error {
	fs := c.flags("status", "[@DB] [--remote]")
	var remote bool
	fs.BoolVar(&remote, "remote", false, "also ask the Charm server for its newest version")
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	n, err := nameFromArgs(pos)
	if err != nil {
		return err
	}
	db, err := openKV(n)
	if err != nil {
		return err
	}
	defer db.Close()
	var s kv.StoreStatus
	if remote {
		s, err = db.StatusWithRemote()
	} else {
		s, err = db.Status()
	}
	if err != nil {
		return err
	}
	lastSync, lastVersion := "never", "never"
	if !s.LastSync.IsZero() {
		lastSync = s.LastSync.UTC().Format("2006-01-02T15:04:05Z")
		lastVersion = strconv.FormatUint(s.LastSyncVersion, 10)
	}
	chainStart, chainDeltas := "none", "none"
	if s.ChainStart != 0 {
		chainStart = strconv.FormatUint(s.ChainStart, 10)
		chainDeltas = strconv.FormatUint(s.ChainDeltas, 10)
	}
	integrity := "ok"
	if s.IntegrityError != nil {
		integrity = message(s.IntegrityError)
	}
	remoteVersion, serverError := "unknown", "none"
	if s.Remote == kv.RemoteReachable {
		remoteVersion = strconv.FormatUint(s.RemoteVersion, 10)
	}
	if s.RemoteError != nil {
		serverError = message(s.RemoteError)
	}
	for _, f := range [][2]string{
		{"database", db.Name()},
		{"last_sync", lastSync},
		{"last_sync_version", lastVersion},
		{"local_version", strconv.FormatUint(s.LocalVersion, 10)},
		{"pending_writes", strconv.FormatUint(s.PendingWrites, 10)},
		{"chain_start", chainStart},
		{"chain_deltas", chainDeltas},
		{"size_bytes", strconv.FormatUint(s.SizeBytes, 10)},
		{"integrity", integrity},
		{"server", s.Remote.String()},
		{"remote_version", remoteVersion},
		{"server_error", serverError},
	} {
		fmt.Fprintf(c.stdout, "%s: %s\n", f[0], strings.NewReplacer("\n", " ", "\r", " ").Replace(f[1]))
	}
	return nil
}

// message is the library's message of err, without the "charm-kv: " prefix.
func message(err error) string {
	var e *kv.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// parseMaxAge reads a duration such as 30s, 10m, 2h, 1d or 1h30m (units ms, s, m,
// h, d), as the Rust command does. A bare number is refused: its unit would be a guess.
func parseMaxAge(text string) (time.Duration, error) {
	bad := fmt.Errorf("invalid duration %q: use a number with a unit, such as 30s, 10m, 2h or 1d", text)
	rest := strings.TrimSpace(text)
	if rest == "" {
		return 0, bad
	}
	units := map[string]time.Duration{
		"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
	}
	var total time.Duration
	for rest != "" {
		digits := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if digits <= 0 {
			return 0, bad
		}
		n, err := strconv.ParseUint(rest[:digits], 10, 63)
		if err != nil {
			return 0, bad
		}
		rest = rest[digits:]
		end := strings.IndexFunc(rest, func(r rune) bool { return r >= '0' && r <= '9' })
		if end < 0 {
			end = len(rest)
		}
		unit, known := units[rest[:end]]
		if !known || n > uint64((1<<63-1)/unit) {
			return 0, bad
		}
		rest = rest[end:]
		if total > (1<<63-1)-time.Duration(n)*unit {
			return 0, bad
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}
