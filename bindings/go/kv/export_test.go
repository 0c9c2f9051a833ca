package kv_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

func TestExportAndImport(t *testing.T) {
	source := openLocal(t)
	for k, v := range map[string]string{"b": "text", "a\xff": "\x00\x01", "c": ""} {
		if err := source.Set([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := source.Export(&out, nil); err != nil {
		t.Fatal(err)
	}
	want := `{"key":"Yf8=","value":"\u0000\u0001","key_base64":true,"value_base64":false}
{"key":"b","value":"text","key_base64":false,"value_base64":false}
{"key":"c","value":"","key_base64":false,"value_base64":false}
`
	if out.String() != want {
		t.Fatalf("Export:\n%s\nwant:\n%s", out.String(), want)
	}
	var part bytes.Buffer
	if err := source.Export(&part, []byte("b")); err != nil || strings.Count(part.String(), "\n") != 1 {
		t.Fatalf("Export(prefix b) = %q, %v", part.String(), err)
	}

	copyDB := openLocal(t) // a data directory of its own
	if err := copyDB.Set([]byte("old"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := copyDB.Import(bytes.NewReader(out.Bytes()), true); err != nil || n != 3 {
		t.Fatalf("Import = %d, %v", n, err)
	}
	var again bytes.Buffer
	if err := copyDB.Export(&again, nil); err != nil || again.String() != want {
		t.Fatalf("after Import, Export = %q, %v", again.String(), err)
	}

	// A malformed line is named and changes nothing.
	_, err := copyDB.Import(strings.NewReader("{\"key\":\"n\",\"value\":\"1\"}\n\n{\"key\":\"\",\"value\":\"2\"}\n"), true)
	if !errors.Is(err, kv.ErrInvalidArgument) || !strings.Contains(err.Error(), "line 3: key cannot be empty") {
		t.Fatalf("malformed Import: %v", err)
	}
	if keys, err := copyDB.Keys(); err != nil || len(keys) != 3 {
		t.Fatalf("after a refused Import: %d keys, %v", len(keys), err)
	}
}
