//go:build charmkv_external

package kv

// -tags charmkv_external: no flags from this package; give them in CGO_CFLAGS (the
// directory of charm_kv.h) and CGO_LDFLAGS (the library and the system libraries it
// needs), for example with a CARGO_TARGET_DIR outside the repository.

import "C"
