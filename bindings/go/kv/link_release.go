//go:build charmkv_release && !charmkv_dev && !charmkv_pkgconfig && !charmkv_pkgconfig_static && !charmkv_external

package kv

// -tags charmkv_release: the static library of this repository's release build
// (`cargo build --release`), linked by path. Use it for benchmarks.

// #cgo CFLAGS: -I${SRCDIR}/../../../include
// #cgo linux LDFLAGS: ${SRCDIR}/../../../target/release/libcharm_kv.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
// #cgo darwin LDFLAGS: ${SRCDIR}/../../../target/release/libcharm_kv.a -framework Security -framework CoreFoundation -liconv -lm
import "C"
