//go:build charmkv_dev && !charmkv_pkgconfig && !charmkv_pkgconfig_static && !charmkv_external

package kv

// -tags charmkv_dev (developers of charm-kv): the static library of this repository's
// debug build (`cargo build --lib` at the repository root), linked by path, so that
// `go test -tags charmkv_dev ./...` works from a fresh clone after one `cargo build`.
// Setting GOFLAGS=-tags=charmkv_dev once saves typing it. See link_*.go for the other
// modes; without a tag the package links the release library inside the module
// (link_dist.go).

// #cgo CFLAGS: -I${SRCDIR}/../../../include
// #cgo linux LDFLAGS: ${SRCDIR}/../../../target/debug/libcharm_kv.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
// #cgo darwin LDFLAGS: ${SRCDIR}/../../../target/debug/libcharm_kv.a -framework Security -framework CoreFoundation -liconv -lm
import "C"
