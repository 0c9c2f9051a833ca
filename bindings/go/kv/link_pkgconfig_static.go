//go:build charmkv_pkgconfig_static && !charmkv_external

package kv

// -tags charmkv_pkgconfig_static: a build found through pkg-config's
// charm_kv-static.pc (scripts/gen-pkgconfig writes it), linked statically.

// #cgo pkg-config: charm_kv-static
import "C"
