// Command go-vectors runs Charm's real Go crypto (muesli/sasquatch and
// jacobsa/crypto/siv at the versions Charm v0.12.6 pins) so that charm-kv's Rust
// implementation can be checked against it in both directions.
//
// Files go through stdin/stdout; failures print to stderr and exit 1.
//
//	encrypt-scrypt PASS            stdin -> sasquatch file (scrypt recipient)
//	decrypt-scrypt PASS            sasquatch file -> plaintext
//	encrypt-ssh PUBFILE...         stdin -> sasquatch file for authorized_keys lines
//	decrypt-ssh PRIVFILE           sasquatch file -> plaintext, with an SSH private key
//	lookup KEYTEXT FIELD           EncryptLookupField, hex on stdout
//	unlookup KEYTEXT HEX           DecryptLookupField
//	encrypt-path KEYTEXT PATH      FS.EncryptPath
//	decrypt-path KEYTEXT PATH      FS.DecryptPath
//
// The lookup and path commands restate charm's crypt.EncryptLookupField,
// crypt.DecryptLookupField and fs.EncryptPath/DecryptPath call for call: those
// methods hang off types that can only be built with a live Charm server.
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jacobsa/crypto/siv"
	"github.com/muesli/sasquatch"
)

var errIncorrectEncryptKeys = errors.New("incorrect or missing encrypt keys")

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "go-vectors:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: go-vectors COMMAND ARGS... (see the source)")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "encrypt-scrypt":
		r, err := sasquatch.NewScryptRecipient(rest[0])
		if err != nil {
			return err
		}
		return encrypt(r)
	case "decrypt-scrypt":
		id, err := sasquatch.NewScryptIdentity(rest[0])
		if err != nil {
			return err
		}
		return decrypt(id)
	case "encrypt-ssh":
		var rs []sasquatch.Recipient
		for _, name := range rest {
			line, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			r, err := sasquatch.ParseRecipient(string(line))
			if err != nil {
				return err
			}
			rs = append(rs, r)
		}
		return encrypt(rs...)
	case "decrypt-ssh":
		ids, err := sasquatch.ParseIdentitiesFile(rest[0])
		if err != nil {
			return err
		}
		return decrypt(ids...)
	case "lookup", "unlookup", "encrypt-path", "decrypt-path":
		if len(rest) != 2 {
			return fmt.Errorf("%s takes KEYTEXT and one argument", cmd)
		}
		key, arg := rest[0], rest[1]
		var out string
		var err error
		switch cmd {
		case "lookup":
			out, err = encryptLookupField(key, arg)
		case "unlookup":
			out, err = decryptLookupField(key, arg)
		case "encrypt-path":
			out, err = mapPath(strings.TrimPrefix(arg, "charm:"), key, encryptLookupField)
		case "decrypt-path":
			out, err = mapPath(arg, key, decryptLookupField)
		}
		if err != nil {
			return err
		}
		_, err = io.WriteString(os.Stdout, out)
		return err
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func encrypt(rs ...sasquatch.Recipient) error {
	w, err := sasquatch.Encrypt(os.Stdout, rs...)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, os.Stdin); err != nil {
		return err
	}
	return w.Close()
}

func decrypt(ids ...sasquatch.Identity) error {
	r, err := sasquatch.Decrypt(os.Stdin, ids...)
	if err != nil {
		return err
	}
	_, err = io.Copy(os.Stdout, r)
	return err
}

// As crypt.EncryptLookupField, with the key text of encrypt key 0.
func encryptLookupField(key, field string) (string, error) {
	if field == "" {
		return "", nil
	}
	ct, err := siv.Encrypt(nil, []byte(key[:32]), []byte(field), nil)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(ct), nil
}

// As crypt.DecryptLookupField with a single key.
func decryptLookupField(key, field string) (string, error) {
	if field == "" {
		return "", nil
	}
	ct, err := hex.DecodeString(field)
	if err != nil {
		return "", err
	}
	pt, err := siv.Decrypt([]byte(key[:32]), ct, nil)
	if err != nil || len(pt) == 0 {
		return "", errIncorrectEncryptKeys
	}
	return string(pt), nil
}

// As fs.EncryptPath / fs.DecryptPath: per "/"-separated segment.
func mapPath(path, key string, f func(key, field string) (string, error)) (string, error) {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		out, err := f(key, p)
		if err != nil {
			return "", err
		}
		parts[i] = out
	}
	return strings.Join(parts, "/"), nil
}
