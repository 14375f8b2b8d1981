package rules

// docs/migrating.md maps the metrics of node_exporter,
// prometheus-podman-exporter and systemd_exporter to panther ones. These
// checks keep it true to the metric catalog and the rules.

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

const migratingDoc = "../docs/migrating.md"

// A panther name, or a recording rule name that contains one.
var pantherName = regexp.MustCompile(`(?:[a-z_]+:)?panther_[a-zA-Z0-9_]+(?::[a-z0-9_]+)?`)

// tableCells splits a markdown table row on the pipes that are not escaped
// (`\|` inside code is a PromQL regexp alternation).
func tableCells(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(strings.TrimSuffix(line, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

var backticked = regexp.MustCompile("`([^`]+)`")

func TestMigratingDoc(t *testing.T) {
	b, err := os.ReadFile(migratingDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	cat := catalogByName()
	recorded := map[string]bool{}
	for _, r := range loadRules(t, rulesGlob) {
		recorded[r.Record] = true
	}

	// 1. Every panther name in the page is exported (or recorded by a rule).
	mentioned := map[string]bool{}
	for _, n := range pantherName.FindAllString(doc, -1) {
		mentioned[n] = true
		if strings.Contains(n, ":") {
			if !recorded[n] {
				t.Errorf("%s names %s, which no rule of %s records", migratingDoc, n, rulesGlob)
			}
			continue
		}
		if cat[n] == nil {
			t.Errorf("%s names %s, which the exporter does not export (collector.Catalog)", migratingDoc, n)
		}
	}

	// 2. Every query of a PromQL column parses and selects only exported
	// or recorded series; every old name of a first column is collected.
	p := parser.NewParser(parser.Options{})
	oldNames := map[string]bool{}
	queries, promqlCol := 0, -1
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "|") {
			promqlCol = -1
			continue
		}
		cells := tableCells(line)
		if promqlCol < 0 {
			for i, c := range cells {
				if c == "PromQL for the old value" {
					promqlCol = i
				}
			}
			continue
		}
		if strings.HasPrefix(cells[0], "---") || len(cells) <= promqlCol {
			continue
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			oldNames[strings.SplitN(m[1], "{", 2)[0]] = true
		}
		q := cells[promqlCol]
		if q == "—" || q == "" {
			continue
		}
		m := backticked.FindStringSubmatch(q)
		if m == nil || m[0] != q {
			t.Errorf("%s: PromQL cell %q is not one `query` or —", migratingDoc, q)
			continue
		}
		e, err := p.ParseExpr(m[1])
		if err != nil {
			t.Errorf("%s: %s: %v", migratingDoc, m[1], err)
			continue
		}
		queries++
		for _, n := range selectors(e) {
			if cat[n] == nil && !recorded[n] {
				t.Errorf("%s: query %s selects %s, which is neither exported nor recorded", migratingDoc, m[1], n)
			}
		}
	}
	if queries < 50 {
		t.Errorf("%s: only %d PromQL cells found; did the table layout change?", migratingDoc, queries)
	}

	// 3. Every series the compatibility rules record has its row.
	for _, r := range loadRules(t, compatRules) {
		if !oldNames[r.Record] {
			t.Errorf("%s records %s, which has no row in %s", compatRules, r.Record, migratingDoc)
		}
	}

	// 4. Every metric of the collectors that replace the three exporters is
	// in the page, so a person moving over finds what is new too.
	var missing []string
	for _, m := range cat {
		switch m.Collector {
		case "system", "podman", "textfile":
			if !mentioned[m.Name] {
				missing = append(missing, m.Name)
			}
		}
	}
	sort.Strings(missing)
	for _, n := range missing {
		t.Errorf("%s: %s is not in %s; add it to its table (as a new metric if nothing maps to it)", migratingDoc, n, migratingDoc)
	}
}

func TestTableCells(t *testing.T) {
	got := tableCells("| `a` | `x{mode=~\"g\\|n\"}` | c |")
	want := []string{"`a`", "`x{mode=~\"g|n\"}`", "c"}
	if strings.Join(got, "¦") != strings.Join(want, "¦") {
		t.Errorf("cells = %q, want %q", got, want)
	}
}
