package nix

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxLinks bounds how many symlinks one resolution follows, as the kernel's
// ELOOP limit does.
const maxLinks = 40

// errDangling marks a symlink whose target does not exist.
var errDangling = errors.New("dangling symlink")

// resolver follows symlinks of the host filesystem mounted at root. NixOS
// links point at absolute /nix/store paths; under --path.rootfs those must be
// read relative to the rootfs, never the exporter's own root, so resolution
// is done here, one component at a time, instead of by the kernel.
type resolver struct{ root string }

// host turns a path of the host's namespace into one of ours.
func (r resolver) host(p string) string { return filepath.Join(r.root, p) }

// resolve returns the host-namespace path p leads to once every symlink is
// followed. A missing component reached through a link is a dangling link,
// reported with the link's path and target; a missing path otherwise wraps
// fs.ErrNotExist.
func (r resolver) resolve(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("resolve %q: not absolute", p)
	}
	done := "/"                                                  // resolved so far (host namespace)
	rest := strings.Split(strings.Trim(path.Clean(p), "/"), "/") // still to walk
	links := 0
	via := "" // the last link followed, for error messages
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = path.Dir(done)
			continue
		}
		next := path.Join(done, c)
		fi, err := os.Lstat(r.host(next))
		if err != nil {
			if via != "" && errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("%s: %w: %s does not exist", via, errDangling, next)
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(rest) > 0 && !fi.IsDir() {
				return "", fmt.Errorf("%s: not a directory", r.host(next))
			}
			done = next
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", r.host(p))
		}
		target, err := os.Readlink(r.host(next))
		if err != nil {
			return "", err
		}
		via = fmt.Sprintf("%s -> %s", r.host(next), target)
		if !path.IsAbs(target) {
			target = path.Join(done, target)
		}
		rest = append(strings.Split(strings.Trim(path.Clean(target), "/"), "/"), rest...)
		done = "/"
	}
	return done, nil
}

// readlink returns the target of the symlink at host-namespace path p,
// without following it.
func (r resolver) readlink(p string) (string, error) {
	return os.Readlink(r.host(p))
}
