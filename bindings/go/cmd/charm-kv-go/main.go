// Command charm-kv-go is the `charm kv` command of Charm v0.12.6 ported to the
// charm-kv Go binding: the same subcommands, flags and output, with the SQLite store
// underneath instead of Badger. Settings come from the CHARM_* environment; with no
// CHARM_HOST everything stays on this machine.
//
//	charm-kv-go set KEY[@DB] [VALUE]     value from stdin when omitted
//	charm-kv-go get KEY[@DB] [-b]
//	charm-kv-go delete KEY[@DB]
//	charm-kv-go list [@DB] [-k|-v] [-r] [-d DELIM] [-b]
//	charm-kv-go sync [@DB] [--if-stale DURATION]
//	charm-kv-go reset [@DB] [--force]
//	charm-kv-go status [@DB] [--remote]
//	charm-kv-go list-dbs
//	charm-kv-go delete-db @DB
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, isTerminal(os.Stdout)))
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

const usage = `Use the Charm key value store (charm-kv, SQLite).

Usage:
  charm-kv-go set KEY[@DB] [VALUE]     set a value (read from stdin when VALUE is omitted)
  charm-kv-go get KEY[@DB] [-b]        get a value
  charm-kv-go delete KEY[@DB]          delete a key
  charm-kv-go list [@DB] [flags]       list all key value pairs
  charm-kv-go sync [@DB]               sync with the Charm server
       [--if-stale DURATION]           only if the last sync is that old (30s, 10m, 2h, 1d)
  charm-kv-go reset [@DB] [--force]    rebuild the local copy from the server
  charm-kv-go status [@DB] [--remote]  sync state, one "field: value" per line
  charm-kv-go list-dbs                 list the local databases
  charm-kv-go delete-db @DB            delete a database (and its copies on the server)

Keys and database names are lower-cased, as by charm kv. The default database is
` + kv.DefaultName + `. Settings come from CHARM_HOST, CHARM_DATA_DIR, CHARM_SSH_PORT,
CHARM_HTTP_PORT, CHARM_IDENTITY_KEY and CHARM_KEY_TYPE; without CHARM_HOST the
store is local.
`

// cli holds one invocation's streams.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	tty            bool
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, tty: tty}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "set":
		err = c.set(rest)
	case "get":
		err = c.get(rest)
	case "delete":
		err = c.delete(rest)
	case "list":
		err = c.list(rest)
	case "sync":
		err = c.sync(rest)
	case "reset":
		err = c.reset(rest)
	case "status":
		err = c.status(rest)
	case "list-dbs":
		err = c.listDBs(rest)
	case "delete-db":
		err = c.deleteDB(rest)
	default:
		err = fmt.Errorf("unknown command %q (see --help)", cmd)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
}

// flags makes a flag set for cmd whose errors go to c.stderr.
func (c *cli) flags(cmd, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: charm-kv-go %s %s\n", cmd, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags given before or after the positional arguments (as cobra
// allows) and checks their number.
func parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			positional = append(positional, args[1:]...)
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if len(positional) < min || len(positional) > max {
		fs.Usage()
		return nil, fmt.Errorf("%s: expected %d to %d arguments, got %d", fs.Name(), min, max, len(positional))
	}
	return positional, nil
}

func boolFlag(fs *flag.FlagSet, p *bool, short, long, help string) {
	fs.BoolVar(p, short, false, help)
	fs.BoolVar(p, long, false, help)
}

func (c *cli) set(args []string) error {
	pos, err := parse(c.flags("set", "KEY[@DB] [VALUE]"), args, 1, 2)
	if err != nil {
		return err
	}
	k, n, err := keyParser(pos[0])
	if err != nil {
		return err
	}
	db, err := openKV(n)
	if err != nil {
		return err
	}
	defer db.Close()
	if len(pos) == 2 {
		err = db.Set(k, []byte(pos[1]))
	} else {
		err = db.SetReader(k, c.stdin)
	}
	if err != nil {
		return err
	}
	c.warnPending(db)
	return nil
}

func (c *cli) get(args []string) error {
	fs := c.flags("get", "KEY[@DB] [-b]")
	var showBinary bool
	boolFlag(fs, &showBinary, "b", "show-binary", "print binary values")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	k, n, err := keyParser(pos[0])
	if err != nil {
		return err
	}
	db, err := openKV(n)
	if err != nil {
		return err
	}
	defer db.Close()
	v, err := db.Get(k)
	if err != nil {
		return err
	}
	c.printFromKV(showBinary, "%s", v)
	return nil
}

func (c *cli) delete(args []string) error {
	pos, err := parse(c.flags("delete", "KEY[@DB]"), args, 1, 1)
	if err != nil {
		return err
	}
	k, n, err := keyParser(pos[0])
	if err != nil {
		return err
	}
	db, err := openKV(n)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Delete(k); err != nil {
		return err
	}
	c.warnPending(db)
	return nil
}

func (c *cli) list(args []string) error {
	fs := c.flags("list", "[@DB] [flags]")
	var reverse, keysOnly, valuesOnly, showBinary bool
	boolFlag(fs, &reverse, "r", "reverse", "list in reverse lexicographic order")
	boolFlag(fs, &keysOnly, "k", "keys-only", "only print keys and don't fetch values from the db")
	boolFlag(fs, &valuesOnly, "v", "values-only", "only print values")
	boolFlag(fs, &showBinary, "b", "show-binary", "print binary values")
	var delimiter string
	fs.StringVar(&delimiter, "d", "\t", "delimiter to separate keys and values")
	fs.StringVar(&delimiter, "delimiter", "\t", "delimiter to separate keys and values")
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	pf := "%s" + delimiter + "%s\n"
	if keysOnly || valuesOnly {
		pf = "%s\n"
	}
	var arg string
	if len(pos) == 1 {
		arg = pos[0]
	}
	_, n, err := keyParser(arg)
	if err != nil {
		return err
	}
	db, err := openKV(n)
	if err != nil {
		return err
	}
	defer db.Close()
	// As charm kv: pull first. Local mode has nothing to pull.
	if err := db.Sync(); err != nil && !errors.Is(err, kv.ErrNotConfigured) {
		return err
	}
	it, err := db.NewIterator(kv.IteratorOptions{Reverse: reverse, KeysOnly: keysOnly})
	if err != nil {
		return err
	}
	defer it.Close()
	for k, v := range it.All() {
		switch {
		case keysOnly:
			c.printFromKV(showBinary, pf, k)
		case valuesOnly:
			c.printFromKV(showBinary, pf, v)
		default:
			c.printFromKV(showBinary, pf, k, v)
		}
	}
	return it.Err()
}

func (c *cli) sync(args []string) error {
	fs := c.flags("sync", "[@DB] [--if-stale DURATION]")
	var ifStale string
	fs.StringVar(&ifStale, "if-stale", "", "only sync when the last successful sync is at least this old (30s, 10m, 2h, 1d)")
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	var maxAge time.Duration
	if ifStale != "" {
		if maxAge, err = parseMaxAge(ifStale); err != nil {
			return err
		}
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
	if ifStale != "" {
		_, err := db.SyncIfStale(maxAge)
		return err
	}
	return db.Sync()
}

func (c *cli) reset(args []string) error {
	fs := c.flags("reset", "[@DB] [--force]")
	var force bool
	fs.BoolVar(&force, "force", false, "discard local writes not yet pushed")
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
	if force {
		return db.ForceReset()
	}
	return db.Reset()
}

func (c *cli) listDBs(args []string) error {
	if _, err := parse(c.flags("list-dbs", ""), args, 0, 0); err != nil {
		return err
	}
	names, err := kv.ListDatabases()
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(c.stdout, n)
	}
	return nil
}

func (c *cli) deleteDB(args []string) error {
	pos, err := parse(c.flags("delete-db", "@DB"), args, 1, 1)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(pos[0], "@") {
		return fmt.Errorf("delete-db: give the database as @DB")
	}
	_, n, err := keyParser(pos[0])
	if err != nil {
		return err
	}
	return kv.DeleteDatabase(n)
}

// warnPending tells the user when a write is committed locally but its push to
// the server failed (it is retried by the next write or sync).
func (c *cli) warnPending(db *kv.KV) {
	n, err := db.PendingWrites()
	if err == nil && n > 0 && os.Getenv("CHARM_HOST") != "" {
		fmt.Fprintf(c.stderr, "Warning: %d write(s) saved locally but not yet pushed to the server; run `charm-kv-go sync`\n", n)
	}
}

func nameFromArgs(args []string) (string, error) {
	if len(args) == 0 {
		return "", nil
	}
	_, n, err := keyParser(args[0])
	if err != nil {
		return "", err
	}
	return n, nil
}

// printFromKV prints vs with the format pf; on a terminal, binary values are
// replaced by a note unless showBinary (as charm kv does).
func (c *cli) printFromKV(showBinary bool, pf string, vs ...[]byte) {
	nb := "(omitted binary data)"
	fvs := make([]any, 0, len(vs))
	for _, v := range vs {
		if c.tty && !showBinary && !utf8.Valid(v) {
			fvs = append(fvs, nb)
		} else {
			fvs = append(fvs, string(v))
		}
	}
	fmt.Fprintf(c.stdout, pf, fvs...)
	if c.tty && !strings.HasSuffix(pf, "\n") {
		fmt.Fprintln(c.stdout)
	}
}

// keyParser splits KEY@DB, lower-casing both, as charm kv does.
func keyParser(k string) ([]byte, string, error) {
	var key, db string
	ps := strings.Split(k, "@")
	switch len(ps) {
	case 1:
		key = strings.ToLower(ps[0])
	case 2:
		key = strings.ToLower(ps[0])
		db = strings.ToLower(ps[1])
	default:
		return nil, "", fmt.Errorf("bad key format, use KEY@DB")
	}
	return []byte(key), db, nil
}

func openKV(name string) (*kv.KV, error) {
	if name == "" {
		name = kv.DefaultName
	}
	return kv.OpenWithDefaults(name)
}
