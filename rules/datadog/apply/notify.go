package apply

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v2"
)

// Classes are the notification classes a monitor message names with a
// placeholder {{panther.notify.CLASS}}: the severity of the alert, or
// data_loss for alerts whose condition means data is lost or about to be.
var Classes = []string{"critical", "warning", "data_loss"}

// Roles are the host roles of pantherOS (the role tag of every series).
var Roles = []string{"server", "workstation"}

// Notify holds the notification handles per class and role: who hears of a
// critical alert on a server, a warning on a workstation, and so on.
type Notify map[string]map[string][]string

// PlaceholderRe matches a placeholder {{panther.notify.CLASS}}.
var PlaceholderRe = regexp.MustCompile(`\{\{\s*panther\.notify\.([A-Za-z_]+)\s*\}\}`)

var handleRe = regexp.MustCompile(`^@[A-Za-z0-9_.+@-]+$`)

// LoadNotify reads the notification handles from a YAML file:
//
//	notify:
//	  critical: {server: ["@pagerduty-x"], workstation: ["@slack-y"]}
//	  ...
func LoadNotify(path string) (Notify, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Notify Notify `yaml:"notify"`
	}
	if err := yaml.UnmarshalStrict(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Notify == nil {
		doc.Notify = Notify{}
	}
	return doc.Notify, nil
}

// Set overrides the handles of one class and role from a flag value
// "CLASS.ROLE=@a,@b".
func (n Notify) Set(spec string) error {
	key, val, ok := strings.Cut(spec, "=")
	class, role, ok2 := strings.Cut(key, ".")
	if !ok || !ok2 {
		return fmt.Errorf("--notify %q: want CLASS.ROLE=@handle[,@handle...]", spec)
	}
	if n[class] == nil {
		n[class] = map[string][]string{}
	}
	var hs []string
	for _, h := range strings.Split(val, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, h)
		}
	}
	n[class][role] = hs
	return nil
}

// Validate checks that every class has handles for every role and that
// each handle is one @word (no text that would change the message).
func (n Notify) Validate() error {
	var problems []string
	for class, roles := range n {
		if !contains(Classes, class) {
			problems = append(problems, fmt.Sprintf("unknown class %q (want one of %v)", class, Classes))
		}
		for role := range roles {
			if !contains(Roles, role) {
				problems = append(problems, fmt.Sprintf("%s: unknown role %q (want one of %v)", class, role, Roles))
			}
		}
	}
	for _, class := range Classes {
		for _, role := range Roles {
			hs := n[class][role]
			if len(hs) == 0 {
				problems = append(problems, fmt.Sprintf("no handle for %s.%s", class, role))
			}
			for _, h := range hs {
				if !handleRe.MatchString(h) {
					problems = append(problems, fmt.Sprintf("%s.%s: %q is not a notification handle (@name)", class, role, h))
				}
			}
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		return fmt.Errorf("notification handles: %s", strings.Join(problems, "; "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var groupByRe = regexp.MustCompile(`\bby\s*\{([^}]*)\}`)

// GroupsByRole reports whether a monitor query is grouped by the role tag,
// so that {{role.name}} is known when it notifies.
func GroupsByRole(query string) bool {
	for _, m := range groupByRe.FindAllStringSubmatch(query, -1) {
		for _, g := range strings.Split(m[1], ",") {
			if strings.TrimSpace(g) == "role" {
				return true
			}
		}
	}
	return false
}

// Expand replaces every {{panther.notify.CLASS}} of a monitor message by
// the handles of that class. When the roles have different handles and the
// query is grouped by role, the workstation's handles go in an
// {{#is_exact_match "role.name" "workstation"}} block and the server's in
// its negation, so a group without a known role gets the server's handles
// (a missing role tag must not silence a page). When the query is not
// grouped by role, the server's handles are used. Recoveries reach the same
// handles: is_exact_match depends on the group's tags, not on the alert
// state.
func (n Notify) Expand(message, query string) (string, error) {
	var err error
	byRole := GroupsByRole(query)
	out := PlaceholderRe.ReplaceAllStringFunc(message, func(p string) string {
		class := PlaceholderRe.FindStringSubmatch(p)[1]
		roles, ok := n[class]
		if !ok || !contains(Classes, class) {
			err = fmt.Errorf("unknown notification class %q in %s (want one of %v)", class, p, Classes)
			return p
		}
		server, ws := strings.Join(roles["server"], " "), strings.Join(roles["workstation"], " ")
		if server == ws || !byRole {
			return server
		}
		return fmt.Sprintf(`{{#is_exact_match "role.name" "workstation"}}%s{{/is_exact_match}}`+
			`{{^is_exact_match "role.name" "workstation"}}%s{{/is_exact_match}}`, ws, server)
	})
	return out, err
}
