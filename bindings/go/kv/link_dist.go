//go:build !charmkv_dev && !charmkv_release && !charmkv_pkgconfig && !charmkv_pkgconfig_static && !charmkv_external

package kv

// Default (what `go get` users build): the release static library shipped inside the
// module, build/<GOOS>-<GOARCH>/libcharm_kv.a, with its header in build/include.
// scripts/release puts them there (they are not in the repository), so in a checkout
// use -tags charmkv_dev (link_dev.go) or run scripts/release first. A platform with
// no line here has no prebuilt library: use charmkv_pkgconfig or charmkv_external.
// The system libraries are those `rustc --print native-static-libs` lists;
// scripts/release fails if they change.

// #cgo CFLAGS: -I${SRCDIR}/../build/include
// #cgo linux,amd64 LDFLAGS: ${SRCDIR}/../build/linux-amd64/libcharm_kv.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
import "C"
