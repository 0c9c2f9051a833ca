// Command original drives the original Badger-backed package
// (github.com/charmbracelet/charm/kv v0.12.6) for the interop tests of the binding.
// The tests run it as a separate program because the original does not pass the
// race detector (Badger v3.2103.2 races in DB.MaxVersion); built without -race it
// runs as its users run it. One operation per run, as `charm kv` and skate do;
// settings come from the CHARM_* environment. Keys and values are hex-encoded.
//
//	original DB set HEXKEY HEXVALUE
//	original DB delete HEXKEY
//	original DB get HEXKEY        prints HEXVALUE
//	original DB keys              prints one HEXKEY per line
//	original DB sync
package main

import (
	"encoding/hex"
	"fmt"
	"os"

	charmkv "github.com/charmbracelet/charm/kv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "original:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: original DB set|delete|get|keys|sync [HEXKEY [HEXVALUE]]")
	}
	name, op, rest := args[0], args[1], args[2:]
	arg := func(i int) ([]byte, error) {
		if i >= len(rest) {
			return nil, fmt.Errorf("%s: missing argument %d", op, i+1)
		}
		return hex.DecodeString(rest[i])
	}
	db, err := charmkv.OpenWithDefaults(name)
	if err != nil {
		return err
	}
	defer db.Close() //nolint:errcheck
	switch op {
	case "set":
		k, err := arg(0)
		if err != nil {
			return err
		}
		v, err := arg(1)
		if err != nil {
			return err
		}
		if err := db.Sync(); err != nil {
			return err
		}
		return db.Set(k, v)
	case "delete":
		k, err := arg(0)
		if err != nil {
			return err
		}
		if err := db.Sync(); err != nil {
			return err
		}
		return db.Delete(k)
	case "get":
		k, err := arg(0)
		if err != nil {
			return err
		}
		if err := db.Sync(); err != nil {
			return err
		}
		v, err := db.Get(k)
		if err != nil {
			return err
		}
		fmt.Println(hex.EncodeToString(v))
	case "keys":
		if err := db.Sync(); err != nil {
			return err
		}
		keys, err := db.Keys()
		if err != nil {
			return err
		}
		for _, k := range keys {
			fmt.Println(hex.EncodeToString(k))
		}
	case "sync":
		return db.Sync()
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	return nil
}
