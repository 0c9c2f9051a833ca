//go:build !charmkv_release && !charmkv_pkgconfig && !charmkv_pkgconfig_static && !charmkv_external

package kv

// Default: the static library of this repository's debug build (`cargo build` at the
// repository root), linked by path, so `go test` works from a fresh clone after one
// `cargo build` with no environment to set. See link_*.go for the other modes.

// #cgo CFLAGS: -I${SRCDIR}/../../../include
// #cgo linux LDFLAGS: ${SRCDIR}/../../../target/debug/libcharm_kv.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
// #cgo darwin LDFLAGS: ${SRCDIR}/../../../target/debug/libcharm_kv.a -framework Security -framework CoreFoundation -liconv -lm
import "C"
