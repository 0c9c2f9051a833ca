package kv_test

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/charm-kv/charm-kv/bindings/go/kv"
)

// A local store (no Charm server): set, get, a batch, and a reverse listing.
func Example() {
	dir, err := os.MkdirTemp("", "charm-kv-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// OpenWithDefaults(name) would take its settings from the CHARM_* variables.
	db, err := kv.Open("charm.sh.example", kv.WithoutEnvironment(), kv.WithDataDir(dir))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	if err := db.Set([]byte("dog"), []byte("food")); err != nil {
		log.Fatal(err)
	}
	v, err := db.Get([]byte("dog"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dog: %s\n", v)

	err = db.Update(func(b *kv.Batch) error {
		b.Set([]byte("cat"), []byte("fish"))
		b.Set([]byte("cow"), []byte("grass"))
		return b.Delete([]byte("dog"))
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.Get([]byte("dog")); errors.Is(err, kv.ErrNotFound) {
		fmt.Println("dog: gone")
	}

	it, err := db.NewIterator(kv.IteratorOptions{Reverse: true})
	if err != nil {
		log.Fatal(err)
	}
	defer it.Close()
	for k, v := range it.All() {
		fmt.Printf("%s=%s\n", k, v)
	}
	if err := it.Err(); err != nil {
		log.Fatal(err)
	}

	// Syncing needs a Charm server (CHARM_HOST or WithHost).
	fmt.Println(errors.Is(db.Sync(), kv.ErrNotConfigured))
	// Output:
	// dog: food
	// dog: gone
	// cow=grass
	// cat=fish
	// true
}
