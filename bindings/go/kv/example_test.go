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

// Listing and iterating by prefix, and starting at a key (Badger's Seek).
func ExampleIteratorOptions() {
	dir, err := os.MkdirTemp("", "charm-kv-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := kv.Open("charm.sh.example", kv.WithoutEnvironment(), kv.WithDataDir(dir))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(b *kv.Batch) error {
		for _, k := range []string{"user:1", "user:2", "user:3", "zone:1"} {
			if err := b.Set([]byte(k), []byte("x")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	users, err := db.KeysWithPrefix([]byte("user:"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d users\n", len(users))

	// From user:2 downwards, keys only.
	it, err := db.NewIterator(kv.IteratorOptions{
		Prefix: []byte("user:"), Start: []byte("user:2"), Reverse: true, KeysOnly: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer it.Close()
	for k := range it.All() {
		fmt.Printf("%s\n", k)
	}
	if err := it.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 3 users
	// user:2
	// user:1
}
