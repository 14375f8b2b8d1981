package apply

import (
	"reflect"
	"strings"
	"testing"
)

func testNotify() Notify {
	return Notify{
		"critical":  {"server": {"@pagerduty-p"}, "workstation": {"@slack-w"}},
		"warning":   {"server": {"@slack-w"}, "workstation": {"@slack-w"}},
		"data_loss": {"server": {"@pagerduty-p", "@ops"}, "workstation": {"@pagerduty-p", "@ops"}},
	}
}

func TestExpand(t *testing.T) {
	n := testNotify()
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	grouped := "max(last_5m):max:panther.podman.up{*} by {host, role ,socket} < 1"
	for _, c := range []struct{ msg, query, want string }{
		{"x\n\n{{panther.notify.critical}}", grouped,
			`x` + "\n\n" + `{{#is_exact_match "role.name" "workstation"}}@slack-w{{/is_exact_match}}{{^is_exact_match "role.name" "workstation"}}@pagerduty-p{{/is_exact_match}}`},
		{"{{panther.notify.critical}}", "max(last_5m):max:panther.podman.up{*} by {host,socket} < 1", "@pagerduty-p"},
		{"{{ panther.notify.warning }}", grouped, "@slack-w"},
		{"{{panther.notify.data_loss}}", grouped, "@pagerduty-p @ops"},
	} {
		got, err := n.Expand(c.msg, c.query)
		if err != nil || got != c.want {
			t.Errorf("Expand(%q, %q) = %q, %v; want %q", c.msg, c.query, got, err, c.want)
		}
	}
	if _, err := n.Expand("{{panther.notify.page}}", grouped); err == nil || !strings.Contains(err.Error(), `"page"`) {
		t.Errorf("unknown class: %v", err)
	}
	if GroupsByRole("avg(last_5m):avg:x{role:server} by {host} > 1") || !GroupsByRole("a by {host} / b by {role} > 1") {
		t.Error("GroupsByRole: a role filter is not a role group; any by {...role...} is")
	}
}

func TestValidate(t *testing.T) {
	n := testNotify()
	delete(n["warning"], "workstation")
	n["critical"]["server"] = []string{"page someone"}
	n["info"] = map[string][]string{"server": {"@x"}}
	err := n.Validate()
	for _, want := range []string{"no handle for warning.workstation", `"page someone" is not a notification handle`, `unknown class "info"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to say %q", err, want)
		}
	}
	n = Notify{}
	if err := n.Set("critical.server=@a, @b"); err != nil || !reflect.DeepEqual(n["critical"]["server"], []string{"@a", "@b"}) {
		t.Errorf("Set: %v %v", err, n)
	}
	if err := n.Set("critical=@a"); err == nil {
		t.Error("Set without a role accepted")
	}
}

func TestDiff(t *testing.T) {
	want := map[string]any{"name": "n", "tags": []any{"b", "a"}, "options": map[string]any{"thresholds": map[string]any{"critical": 1}},
		"widgets": []any{map[string]any{"definition": map[string]any{"type": "note"}}}}
	// Datadog's copy: the same plus defaults and ids, tags in another order.
	have := map[string]any{"name": "n", "id": 7, "tags": []any{"a", "b"}, "options": map[string]any{"thresholds": map[string]any{"critical": 1}, "notify_audit": false},
		"widgets": []any{map[string]any{"id": 123, "definition": map[string]any{"type": "note", "show_tick": false}}}}
	if d, err := Diff(want, have, "tags"); err != nil || len(d) != 0 {
		t.Errorf("defaults and ids are differences: %v %v", d, err)
	}
	have["tags"] = []any{"a", "b", "c"}
	have["options"].(map[string]any)["thresholds"] = map[string]any{"critical": 2}
	have["widgets"] = []any{}
	delete(have, "name")
	d, _ := Diff(want, have, "tags")
	wantD := []string{`name: (none) -> "n"`, "options.thresholds.critical: 2 -> 1", `tags: ["a","b","c"] -> ["a","b"]`, `widgets: [] -> [{"definition":{"type":"note"}}]`}
	if !reflect.DeepEqual(d, wantD) {
		t.Errorf("Diff = %q\nwant %q", d, wantD)
	}
	long := strings.Repeat("x", 200)
	d, _ = Diff(map[string]any{"message": long + "NEW"}, map[string]any{"message": long + "OLD"})
	if len(d) != 1 || !strings.Contains(d[0], "from character 160") || !strings.Contains(d[0], `xOLD"`) || !strings.Contains(d[0], `xNEW"`) {
		t.Errorf("long text diff %q", d)
	}
}
