// Command charm-kv-badger writes every live pair of a Badger database directory as
// the JSON lines of `charm-kv export`, for `charm-kv import --from-badger DIR`
// (docs/cli.md, "Importing Badger data"). It reads two kinds of directory:
//
//   - the original Go `charm kv` (charm v0.12.6): Badger v3, managed mode, encrypted
//     with the first 32 bytes of one of the account's encrypt keys;
//   - skate v1: Badger v4, plaintext.
//
// Usage:
//
//	charm-kv-badger [-expiry-field NAME] DIR
//
// Encryption keys come on stdin, one per line, hex or standard base64 (16, 24 or 32
// bytes; never in argv or the environment, which other users can read). Stdin that is
// a terminal is not read. A plaintext directory needs no key.
//
// The user's directory is never written: it is locked shared (as Badger's read-only
// mode does, so a running charm kv or skate, which holds it exclusively, is reported)
// while its files are copied into a private temporary directory, and Badger opens the
// copy. (Badger's own read-only mode still opens the DISCARD file read-write and
// sorts it in place, and refuses a directory whose write-ahead log needs replaying.)
//
// Exit statuses: 0 exported; 1 other failure; 2 usage; 3 encrypted and none of the
// given keys opens it; 4 not a Badger directory (or missing); 5 in use by another
// process.
package main

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	badger3 "github.com/dgraph-io/badger/v3"
	badger4 "github.com/dgraph-io/badger/v4"
)

const (
	exitFailure  = 1
	exitUsage    = 2
	exitKeys     = 3
	exitNotFound = 4
	exitInUse    = 5
)

// The key registry starts with a 16-byte IV and this text, AES-CTR encrypted with the
// database's key (plaintext when there is none): Badger's own key check.
var sanityText = []byte("Hello Badger")

const keyRegistryFile = "KEYREGISTRY"

// failure is an error with its exit status.
type failure struct {
	code int
	msg  string
}

func (f *failure) Error() string { return f.msg }

func fail(code int, format string, args ...any) error {
	return &failure{code: code, msg: fmt.Sprintf(format, args...)}
}

func main() {
	expiryField := flag.String("expiry-field", "expires_at_unix_ms",
		"JSON field for an entry's expiry (unix milliseconds), written only for entries that have one")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: charm-kv-badger [-expiry-field NAME] DIR  (keys on stdin, one per line, hex or base64)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *expiryField == "" {
		flag.Usage()
		os.Exit(exitUsage)
	}
	if err := run(flag.Arg(0), *expiryField); err != nil {
		fmt.Fprintln(os.Stderr, "charm-kv-badger:", err)
		var f *failure
		if errors.As(err, &f) {
			os.Exit(f.code)
		}
		os.Exit(exitFailure)
	}
}

func run(dir, expiryField string) error {
	keys, err := readKeys(os.Stdin)
	if err != nil {
		return err
	}
	info, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fail(exitNotFound, "%s does not exist", dir)
	} else if err != nil {
		return err
	} else if !info.IsDir() {
		return fail(exitNotFound, "%s is not a directory", dir)
	}
	for _, name := range []string{"MANIFEST", keyRegistryFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fail(exitNotFound, "%s is not a Badger database directory (no %s)", dir, name)
		}
	}
	key, err := chooseKey(filepath.Join(dir, keyRegistryFile), keys)
	if err != nil {
		return err
	}

	work, err := os.MkdirTemp("", "charm-kv-badger-")
	if err != nil {
		return err
	}
	// The copy may hold plaintext (skate) or the user's encrypted files: it goes
	// whatever happens, a termination signal included.
	defer os.RemoveAll(work)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		<-signals
		os.RemoveAll(work)
		os.Exit(exitFailure)
	}()
	if err := copyLocked(dir, work); err != nil {
		return err
	}

	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	emit := func(key, value []byte, expiresAt uint64) error {
		line := map[string]any{}
		text, isBase64 := textOrBase64(key)
		line["key"], line["key_base64"] = text, isBase64
		text, isBase64 = textOrBase64(value)
		line["value"], line["value_base64"] = text, isBase64
		if expiresAt != 0 {
			// charm-kv takes expiries up to the end of the year 9999; Badger's field is
			// any uint64 of seconds (math.MaxUint64 from some writers): clamped, not
			// wrapped into a small, past time.
			line[expiryField] = min(expiresAt, maxExpirySeconds) * 1000
		}
		return enc.Encode(line)
	}
	if key == nil {
		err = export4(work, emit)
	} else {
		err = export3(work, key, emit)
	}
	if err != nil {
		return err
	}
	return out.Flush()
}

// readKeys reads the candidate keys from stdin (not from a terminal).
func readKeys(in *os.File) ([][]byte, error) {
	if info, err := in.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
		return nil, nil
	}
	var keys [][]byte
	scanner := bufio.NewScanner(io.LimitReader(in, 1<<20))
	for n := 1; scanner.Scan(); n++ {
		text := strings.TrimSpace(scanner.Text())
		if text == "" {
			continue
		}
		key, err := hex.DecodeString(text)
		if err != nil {
			key, err = base64.StdEncoding.DecodeString(text)
		}
		if err != nil {
			return nil, fail(exitUsage, "key on line %d of stdin is neither hex nor base64", n)
		}
		if l := len(key); l != 16 && l != 24 && l != 32 {
			return nil, fail(exitUsage, "key on line %d of stdin is %d bytes; Badger takes 16, 24 or 32", n, l)
		}
		keys = append(keys, key)
	}
	return keys, scanner.Err()
}

// chooseKey returns nil for a plaintext database, else the first key that decrypts
// the key registry's check text.
func chooseKey(registry string, keys [][]byte) ([]byte, error) {
	data, err := os.ReadFile(registry)
	if err != nil {
		return nil, err
	}
	if len(data) < aes.BlockSize+len(sanityText) {
		return nil, fail(exitNotFound, "%s is too short for a Badger key registry", registry)
	}
	iv, check := data[:aes.BlockSize], data[aes.BlockSize:aes.BlockSize+len(sanityText)]
	if bytes.Equal(check, sanityText) {
		return nil, nil
	}
	if len(keys) == 0 {
		return nil, fail(exitKeys, "the database is encrypted and no key was given")
	}
	for _, key := range keys {
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		plain := make([]byte, len(check))
		cipher.NewCTR(block, iv).XORKeyStream(plain, check)
		if bytes.Equal(plain, sanityText) {
			return key, nil
		}
	}
	return nil, fail(exitKeys, "the database is encrypted and none of the %d given key(s) opens it", len(keys))
}

// copyLocked copies the regular files of dir into work while holding a shared lock
// on dir, the lock Badger's read-only mode takes: a process that has the database
// open for writing holds it exclusively, and its files may be mid-write.
func copyLocked(dir, work string) error {
	handle, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer handle.Close()
	if err := syscall.Flock(int(handle.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return fail(exitInUse, "%s is in use by another process (a running charm kv or skate?): close it and try again (%v)", dir, err)
	}
	defer syscall.Flock(int(handle.Fd()), syscall.LOCK_UN)
	entries, err := handle.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, entry := range entries {
		// Subdirectories are other databases (skate's default database is the
		// directory that holds the named ones); LOCK is the writer's pid file.
		if !entry.Type().IsRegular() || entry.Name() == "LOCK" {
			continue
		}
		if err := copyFile(filepath.Join(dir, entry.Name()), filepath.Join(work, entry.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copying %s: %w", from, err)
	}
	return dst.Close()
}

type emitFunc func(key, value []byte, expiresAt uint64) error

// maxExpirySeconds is the latest expiry charm-kv stores: 9999-12-31T23:59:59Z.
const maxExpirySeconds = 253402300799

// live reports whether an entry that carries expiresAt (unix seconds, 0 for none)
// has not expired: Badger's iterator skips expired entries too, by the same clock.
func live(expiresAt uint64) bool {
	return expiresAt == 0 || expiresAt > uint64(time.Now().Unix())
}

// export4 reads a plaintext database (skate v1 writes Badger v4). Opened managed and
// read at the highest timestamp, a database written unmanaged reads the same: the
// newest version of every key, without deleted and expired entries.
func export4(dir string, emit emitFunc) error {
	db, err := badger4.OpenManaged(badger4.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		return fmt.Errorf("opening the Badger database: %w", err)
	}
	defer db.Close()
	txn := db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger4.DefaultIteratorOptions)
	defer it.Close()
	return exportEntries(it, emit)
}

// export3 reads an encrypted database of charm kv (Badger v3, managed mode, as
// charm's kv.openDB opens it).
func export3(dir string, key []byte, emit emitFunc) error {
	opts := badger3.DefaultOptions(dir).WithLogger(nil).
		WithEncryptionKey(key).WithIndexCacheSize(1 << 20)
	db, err := badger3.OpenManaged(opts)
	if err != nil {
		return fmt.Errorf("opening the Badger database: %w", err)
	}
	defer db.Close()
	txn := db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger3.DefaultIteratorOptions)
	defer it.Close()
	return exportEntries(it, emit)
}

// entry is what exportEntries reads of a Badger item (v3 and v4 alike).
type entry interface {
	ExpiresAt() uint64
	KeyCopy(dst []byte) []byte
	ValueCopy(dst []byte) ([]byte, error)
}

// entries is a Badger iterator (v3 and v4 alike) over items of type I.
type entries[I entry] interface {
	Rewind()
	Valid() bool
	Next()
	Item() I
}

// exportEntries emits every live entry of it, in key order.
func exportEntries[I entry](it entries[I], emit emitFunc) error {
	// Errors name an entry by its position: messages never carry key bytes.
	position := 0
	for it.Rewind(); it.Valid(); it.Next() {
		position++
		item := it.Item()
		if !live(item.ExpiresAt()) {
			continue
		}
		value, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("reading the value of entry %d: %w", position, err)
		}
		if err := emit(item.KeyCopy(nil), value, item.ExpiresAt()); err != nil {
			return err
		}
	}
	return nil
}

// textOrBase64 is charm-kv's rule (src/jsonl.rs): UTF-8 as it is, else base64.
func textOrBase64(b []byte) (string, bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}
