package kv

// #include "charm_kv.h"
import "C"

import (
	"strings"
	"sync"
)

// HeaderVersion is the version of include/charm_kv.h this package was compiled
// against (its CHARM_KV_VERSION, such as "0.2.0").
const HeaderVersion = C.CHARM_KV_VERSION

// Version returns the version of the charm-kv library actually linked, such as
// "0.2.0".
func Version() string {
	return C.GoString(C.charm_kv_version())
}

var versionCheck struct {
	once sync.Once
	err  error
}

// checkVersion fails when the linked library is not compatible with the header (a
// shared library from another release): until 1.0 only the same MAJOR.MINOR is.
func checkVersion() error {
	versionCheck.once.Do(func() {
		if lib := Version(); majorMinor(lib) != majorMinor(HeaderVersion) {
			versionCheck.err = newError(StatusInternal,
				"the charm-kv library is version "+lib+" but this Go package was built for "+
					HeaderVersion+"; rebuild against the same MAJOR.MINOR")
		}
	})
	return versionCheck.err
}

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	if parts[0] != "0" {
		return parts[0]
	}
	return parts[0] + "." + parts[1]
}
