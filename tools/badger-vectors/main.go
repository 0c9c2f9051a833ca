// Command badger-vectors writes the Badger backup streams in tests/vectors
// (badger_backup_seq1.bin … badger_backup_seq5.bin) with the Badger release that
// Charm v0.12.6 pins, making the same calls as charm's kv package for every step:
// NewTransactionAt, CommitAt(seq), then NewStreamAt(MaxUint64).Backup(since), where
// since is the database's MaxVersion before the commit (kv.Commit / backupSeq).
//
//	go run . OUTDIR
//
// The streams are plaintext: charm's kv encrypts them with sasquatch before upload,
// and the tests exercise that layer separately.
package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"

	badger "github.com/dgraph-io/badger/v3"
)

type step struct {
	key, value string
	delete     bool
	userMeta   byte
}

// The history the tests replay: an update whose new version Badger's incremental
// backup leaves out, a delete (tombstone), and an entry carrying user metadata.
var steps = []step{
	{key: "foo", value: "bar"},
	{key: "baz", value: "qux"},
	{key: "foo", value: "bar2"},
	{key: "baz", delete: true},
	{key: "k5", value: "v5", userMeta: 0x07},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: badger-vectors OUTDIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "badger-vectors:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	dir, err := os.MkdirTemp("", "badger-vectors")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := badger.OpenManaged(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		return err
	}
	defer db.Close()
	for i, s := range steps {
		seq := uint64(i + 1)
		since := db.MaxVersion()
		txn := db.NewTransactionAt(math.MaxUint64, true)
		if s.delete {
			err = txn.Delete([]byte(s.key))
		} else {
			err = txn.SetEntry(badger.NewEntry([]byte(s.key), []byte(s.value)).WithMeta(s.userMeta))
		}
		if err != nil {
			return err
		}
		if err := txn.CommitAt(seq, nil); err != nil {
			return err
		}
		var buf bytes.Buffer
		if _, err := db.NewStreamAt(math.MaxUint64).Backup(&buf, since); err != nil {
			return err
		}
		name := filepath.Join(out, fmt.Sprintf("badger_backup_seq%d.bin", seq))
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
