// Package execline reads back an Exec*= line as NixOS writes it: the
// arguments of utils.escapeSystemdExecArgs (nixos/lib/utils.nix), each
// JSON-quoted, separated by spaces, with %% for % and $$ for $ (systemd's
// specifier and variable escapes). The NixOS module tests and the e2e tests
// run the argv a module renders; this turns the line into that argv.
package execline

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Split returns the argv of line. An unquoted word or a broken quote is an
// error: NixOS never writes one.
func Split(line string) ([]string, error) {
	if line == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(strings.NewReplacer("%%", "%", "$$", "$").Replace(line)))
	var argv []string
	for {
		var a string
		err := dec.Decode(&a)
		if err == io.EOF {
			return argv, nil
		}
		if err != nil {
			return nil, fmt.Errorf("exec line %q: %v", line, err)
		}
		argv = append(argv, a)
	}
}

// Line is an Exec*= line in JSON (a string), decoded into its argv.
type Line []string

// UnmarshalJSON decodes a JSON string holding an exec line.
func (l *Line) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	argv, err := Split(s)
	*l = argv
	return err
}
