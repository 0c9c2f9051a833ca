//go:build charmkv_pkgconfig && !charmkv_pkgconfig_static && !charmkv_external

package kv

// -tags charmkv_pkgconfig: an installed (or any) build found through pkg-config's
// charm_kv.pc (scripts/gen-pkgconfig writes it), linked dynamically: the shared
// library must be found at run time (ldconfig, an rpath in CGO_LDFLAGS, or
// LD_LIBRARY_PATH).

// #cgo pkg-config: charm_kv
import "C"
