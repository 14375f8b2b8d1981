package e2e

// Not an e2e test (no build tag): `go test ./...` runs it. Every e2e test
// must start with serial(t) or beside(t) (harness_test.go): a test with
// neither still runs correctly, alone, but before all the others instead of
// in the queue, and the minutes the alert tests wait are no longer spent
// beside it.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

func TestEveryTestChoosesSerialOrBeside(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	tests := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		isE2E := false
		for _, c := range f.Comments { // c.Text() drops //go: lines: read them raw
			for _, l := range c.List {
				if c.Pos() < f.Package && strings.HasPrefix(l.Text, "//go:build") && strings.Contains(l.Text, "e2e") {
					isE2E = true
				}
			}
		}
		if !isE2E {
			continue
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") || fn.Name.Name == "TestMain" {
				continue
			}
			tests++
			if first := firstCall(fn); first != "serial" && first != "beside" {
				t.Errorf("%s: %s starts with %q, want serial(t) or beside(t) (e2e/harness_test.go says which)",
					fset.Position(fn.Pos()), fn.Name.Name, first)
			}
		}
	}
	if tests < 10 {
		t.Fatalf("found %d e2e tests in %v: the check reads the wrong files", tests, files)
	}
}

// firstCall names the function called by fn's first statement, if it is a
// call of a plain identifier with fn's *testing.T as its only argument.
func firstCall(fn *ast.FuncDecl) string {
	if fn.Body == nil || len(fn.Body.List) == 0 || len(fn.Type.Params.List) != 1 || len(fn.Type.Params.List[0].Names) != 1 {
		return ""
	}
	es, ok := fn.Body.List[0].(*ast.ExprStmt)
	if !ok {
		return ""
	}
	call, ok := es.X.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return ""
	}
	id, ok := call.Fun.(*ast.Ident)
	arg, ok2 := call.Args[0].(*ast.Ident)
	if !ok || !ok2 || arg.Name != fn.Type.Params.List[0].Names[0].Name {
		return ""
	}
	return id.Name
}
