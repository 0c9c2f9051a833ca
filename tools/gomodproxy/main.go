// Command gomodproxy lays a Go module directory out as a module proxy directory (the
// GOPROXY protocol: <module>/@v/list, <version>.info, .mod and .zip), so that
// `GOPROXY=file:///that/dir go get <module>@<version>` works without a server.
// scripts/release uses it for the Go binding. The zip comes from golang.org/x/mod/zip,
// the go command's own rules (nested modules, vendor/ and size limits).
//
// Usage: gomodproxy -dir MODULE_DIR -version vX.Y.Z -out PROXY_DIR
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

func main() {
	dir := flag.String("dir", "", "the module's directory (holding go.mod)")
	version := flag.String("version", "", "the version to publish, e.g. v0.1.0")
	out := flag.String("out", "", "the proxy directory to write into")
	flag.Parse()
	if *dir == "" || *out == "" || !semver.IsValid(*version) {
		fmt.Fprintln(os.Stderr, "usage: gomodproxy -dir MODULE_DIR -version vX.Y.Z -out PROXY_DIR")
		os.Exit(2)
	}
	if err := run(*dir, *version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gomodproxy:", err)
		os.Exit(1)
	}
}

func run(dir, version, out string) error {
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	path := modfile.ModulePath(gomod)
	if path == "" {
		return fmt.Errorf("%s/go.mod has no module line", dir)
	}
	escaped, err := module.EscapePath(path)
	if err != nil {
		return err
	}
	vdir := filepath.Join(out, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	mv := module.Version{Path: path, Version: version}
	zf, err := os.Create(filepath.Join(vdir, version+".zip"))
	if err != nil {
		return err
	}
	if err := zip.CreateFromDir(zf, mv, dir); err != nil {
		zf.Close()
		return err
	}
	if err := zf.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, version+".mod"), gomod, 0o644); err != nil {
		return err
	}
	// Time is informational (the go command shows it); a fixed one keeps the
	// output reproducible when SOURCE_DATE_EPOCH is set.
	stamp := time.Now().UTC()
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		var secs int64
		if _, err := fmt.Sscan(epoch, &secs); err == nil {
			stamp = time.Unix(secs, 0).UTC()
		}
	}
	info, err := json.Marshal(struct{ Version, Time string }{version, stamp.Format(time.RFC3339)})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, version+".info"), info, 0o644); err != nil {
		return err
	}
	// @v/list: every version present, one a line.
	var versions []string
	if data, err := os.ReadFile(filepath.Join(vdir, "list")); err == nil {
		versions = strings.Fields(string(data))
	}
	if !slices.Contains(versions, version) {
		versions = append(versions, version)
	}
	semver.Sort(versions)
	return os.WriteFile(filepath.Join(vdir, "list"), []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}
