package nixos

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pantheros/monitoring/internal/execline"
	"github.com/pantheros/monitoring/internal/testenv"
)

var updateVendorHash = flag.Bool("update-vendor-hash", false, "rewrite vendorHash in package.nix")

// buildTags is exporter/build-tags, the one list of build tags (comma-separated).
func buildTags(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(read(t, "../exporter/build-tags"))
}

// output runs a program and returns its standard output. Only stdout is
// data: a freshly installed nix-bin warns on stderr (no nixbld group), and a
// parser fed both breaks. stderr is shown when the program fails.
func output(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(cmd.Args, " "), err, out, stderr.Bytes())
	}
	return out
}

// tool returns the path of a program; without it the test fails in CI and
// is skipped elsewhere (internal/testenv's rule).
var tool = testenv.Tool

// nixpkgsLib is a directory holding nixpkgs' own lib/, from
// ../shared/nixpkgs-lib (testenv.NixpkgsLib: a failure in CI, a skip
// elsewhere, when it is absent).
func nixpkgsLib(t *testing.T) string {
	t.Helper()
	return testenv.NixpkgsLib(t, "..")
}

// evalNix evaluates testdata/eval.nix (the modules under nixpkgs'
// lib.evalModules) with the given --arg NAME EXPR pairs and returns its JSON.
func evalNix(t *testing.T, args ...string) []byte {
	t.Helper()
	return nixEval(t, "testdata/eval.nix", append([]string{"--arg", "nixpkgsLib", nixpkgsLib(t)}, args...)...)
}

// execLine is an ExecStart as NixOS writes it, one string from
// utils.escapeSystemdExecArgs, split back into the argv systemd runs.
type execLine = execline.Line

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// binary is $PANTHER_EXPORTER_BIN, or the exporter built once for this
// package's tests.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("PANTHER_EXPORTER_BIN"); p != "" {
			binPath = p
			return
		}
		binDir, binErr = os.MkdirTemp("", "panther-nixos-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "panther-exporter")
		cmd := exec.Command("go", "build", "-tags="+buildTags(t), "-o", binPath, "../exporter/cmd/panther-exporter")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// nixFiles is every .nix file of the repository.
func nixFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "vendor" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".nix") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestNixFilesParse(t *testing.T) {
	nixInstantiate := tool(t, "nix-instantiate")
	files := nixFiles(t)
	for _, want := range []string{"../flake.nix", "../nixos/module.nix", "../nixos/monitoring.nix", "../nixos/package.nix", "../nixos/hardening.nix", "../nixos/tests/panther-exporter.nix"} {
		found := false
		for _, f := range files {
			if filepath.Clean(f) == filepath.Clean(want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s is missing", want)
		}
	}
	for _, f := range files {
		if out, err := exec.Command(nixInstantiate, "--parse", f).CombinedOutput(); err != nil {
			t.Errorf("nix-instantiate --parse %s: %v\n%s", f, err, out)
		}
	}
}

// helpFlags returns every long flag name `panther-exporter --help` lists;
// a --[no-]NAME flag gives NAME and no-NAME.
func helpFlags(t *testing.T) map[string]bool {
	t.Helper()
	out := output(t, exec.Command(binary(t), "--help"))
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--(\[no-\])?([a-z0-9][a-z0-9._-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[2]] = true
		if m[1] != "" {
			flags["no-"+m[2]] = true
		}
	}
	if !flags["web.listen-address"] || !flags["collector.system"] {
		t.Fatalf("could not parse --help output:\n%s", out)
	}
	return flags
}

// nixFlag matches a flag at the start of a Nix string: "--name=...".
var nixFlag = regexp.MustCompile(`"--([a-z0-9][a-z0-9._-]*)(\$\{)?`)

// collectorNames reads the collectorNames list of module.nix.
func collectorNames(t *testing.T, module string) []string {
	t.Helper()
	m := regexp.MustCompile(`collectorNames = \[([^\]]*)\];`).FindStringSubmatch(module)
	if m == nil {
		t.Fatal("module.nix: no collectorNames list")
	}
	var names []string
	for _, q := range regexp.MustCompile(`"([a-z0-9_-]+)"`).FindAllStringSubmatch(m[1], -1) {
		names = append(names, q[1])
	}
	return names
}

// TestFlagsExist checks every flag that module.nix, the VM test and the
// plain unit pass, against `panther-exporter --help`.
func TestFlagsExist(t *testing.T) {
	have := helpFlags(t)
	module := read(t, "module.nix")
	checked := 0
	check := func(file, name string) {
		checked++
		if !have[name] {
			t.Errorf("%s passes --%s, which panther-exporter --help does not list", file, name)
		}
	}
	for _, file := range []string{"module.nix", "tests/panther-exporter.nix"} {
		for _, m := range nixFlag.FindAllStringSubmatch(read(t, file), -1) {
			name := m[1]
			if m[2] != "" { // "--collector.${c}": the collector names are checked below
				if name != "collector." && name != "no-collector." {
					t.Errorf("%s: unexpected computed flag --%s${...}", file, name)
				}
				continue
			}
			check(file, name)
		}
	}
	for _, c := range collectorNames(t, module) {
		check("module.nix (collectorNames)", "collector."+c)
		check("module.nix (collectorNames)", "no-collector."+c)
	}
	// Every collector the binary has is one the module can switch.
	names := collectorNames(t, module)
	for f := range have {
		if c, ok := strings.CutPrefix(f, "collector."); ok && !strings.Contains(c, ".") && c != "timeout" && c != "disable-defaults" {
			found := false
			for _, n := range names {
				found = found || n == c
			}
			if !found {
				t.Errorf("the binary has collector %q, module.nix's collectorNames does not", c)
			}
		}
	}
	unit := read(t, "panther-exporter.service")
	exec := regexp.MustCompile(`(?m)^(?:ExecStart|Environment)=(.*)$`).FindAllStringSubmatch(unit, -1)
	if len(exec) < 2 {
		t.Fatal("panther-exporter.service: no ExecStart and Environment")
	}
	for _, line := range exec {
		for _, m := range regexp.MustCompile(`(?:^|[\s"=])--([a-z0-9][a-z0-9._-]*)`).FindAllStringSubmatch(line[1], -1) {
			check("panther-exporter.service", m[1])
		}
	}
	t.Logf("%d flags checked against --help", checked)
	if checked < 15 {
		t.Errorf("only %d flags found to check; the patterns no longer match the files", checked)
	}
}

// unitSettings returns the [Service] settings between "# BEGIN hardening"
// and "# END hardening" (each line one value, as NixOS writes lists), and
// the keys set elsewhere in [Service].
func unitSettings(t *testing.T, unit string) (inBlock map[string][]string, outside map[string]bool) {
	t.Helper()
	inBlock, outside = map[string][]string{}, map[string]bool{}
	section, block := "", false
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "# BEGIN hardening":
			block = true
		case line == "# END hardening":
			block = false
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("panther-exporter.service: bad line %q", line)
			}
			if section != "[Service]" {
				continue
			}
			if block {
				inBlock[k] = append(inBlock[k], v)
			} else {
				outside[k] = true
			}
		}
	}
	return inBlock, outside
}

// systemdValue renders a Nix value as NixOS's systemd library does: one
// line per list element, booleans as true/false.
func systemdValue(v any) []string {
	switch v := v.(type) {
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, systemdValue(e)...)
		}
		return out
	case bool:
		return []string{strconv.FormatBool(v)}
	case float64:
		return []string{strconv.FormatFloat(v, 'f', -1, 64)}
	default:
		return []string{fmt.Sprint(v)}
	}
}

// normBool maps systemd's boolean spellings to one.
func normBool(s string) string {
	switch strings.ToLower(s) {
	case "yes", "true", "on", "1":
		return "true"
	case "no", "false", "off", "0":
		return "false"
	}
	return s
}

// TestHardeningSame checks that the module's sandbox (hardening.nix, as
// nix-instantiate evaluates it) and the plain unit's are the same list, and
// that neither file changes a hardening setting elsewhere.
func TestHardeningSame(t *testing.T) {
	nixInstantiate := tool(t, "nix-instantiate")
	out := output(t, exec.Command(nixInstantiate, "--eval", "--strict", "--json", "hardening.nix"))
	var nix map[string]any
	if err := json.Unmarshal(out, &nix); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"DynamicUser", "ProtectSystem", "ProtectHome", "PrivateDevices", "NoNewPrivileges",
		"RestrictAddressFamilies", "CapabilityBoundingSet", "SystemCallFilter"} {
		if _, ok := nix[k]; !ok {
			t.Errorf("hardening.nix lacks %s", k)
		}
	}
	unit, outside := unitSettings(t, read(t, "panther-exporter.service"))
	keys := map[string]bool{}
	for k := range nix {
		keys[k] = true
	}
	for k := range unit {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		nv, inNix := nix[k]
		uv, inUnit := unit[k]
		switch {
		case !inNix:
			t.Errorf("%s: in panther-exporter.service, not in hardening.nix", k)
		case !inUnit:
			t.Errorf("%s: in hardening.nix, not in panther-exporter.service", k)
		default:
			want := systemdValue(nv)
			for i := range want {
				want[i] = normBool(want[i])
			}
			got := make([]string, len(uv))
			for i := range uv {
				got[i] = normBool(uv[i])
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: panther-exporter.service has %q, hardening.nix %q", k, got, want)
			}
		}
		if outside[k] {
			t.Errorf("%s: panther-exporter.service sets it again outside the hardening block", k)
		}
	}
	// The module adds only non-sandbox settings to hardening.nix's.
	module := read(t, "module.nix")
	m := regexp.MustCompile(`(?s)serviceConfig = hardening // \{(.*?)\n      \};`).FindStringSubmatch(module)
	if m == nil {
		t.Fatal("module.nix: no `serviceConfig = hardening // { ... }`")
	}
	for _, k := range regexp.MustCompile(`(?m)^\s*([A-Za-z]+) =`).FindAllStringSubmatch(m[1], -1) {
		if _, ok := nix[k[1]]; ok {
			t.Errorf("module.nix overrides hardening setting %s", k[1])
		}
	}
	if strings.Count(module, "hardening") < 2 || !strings.Contains(module, "import ./sandbox.nix") {
		t.Error("module.nix does not use ./sandbox.nix")
	}
	if !strings.Contains(read(t, "hardening.nix"), "import ./sandbox.nix { }") {
		t.Error("hardening.nix is not sandbox.nix with its defaults")
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for panther-exporter\.service: ([0-9.]+)`)

// TestSecurityExposure rates the plain unit with systemd-analyze security
// --offline=true (systemd >= 252) and checks the README quotes the figure.
func TestSecurityExposure(t *testing.T) {
	sa := tool(t, "systemd-analyze")
	if out := output(t, exec.Command(sa, "--help")); !bytes.Contains(out, []byte("--offline")) {
		t.Fatalf("this systemd-analyze has no --offline (systemd < 252):\n%s", out)
	}
	// The goal: 1.5, with the clock metrics' read-only adjtimex (0.3 of it:
	// ProtectClock off, adjtimex in the filter); see README.md for every
	// combination.
	out := output(t, exec.Command(sa, "security", "--offline=true", "--threshold=15", "--no-pager", "panther-exporter.service"))
	m := exposureRE.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	level, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %s", m[1])
	if level > 1.5 {
		t.Errorf("exposure level %.1f > 1.5:\n%s", level, out)
	}
	readme := read(t, "../README.md")
	_, section, ok := strings.Cut(readme, "## Deploying on NixOS")
	if !ok {
		t.Fatal(`README.md has no "## Deploying on NixOS" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	if !strings.Contains(section, "exposure level "+m[1]) {
		t.Errorf("README.md's Deploying on NixOS section should say %q", "exposure level "+m[1])
	}
}

// TestTags checks that the Makefile and package.nix build with the tags of
// exporter/build-tags (nix evaluates package.nix's tags expression), and
// that package.nix stamps the version.
func TestTags(t *testing.T) {
	want := strings.Split(buildTags(t), ",")
	if !strings.Contains(read(t, "../Makefile"), "TAGS := $(shell cat exporter/build-tags)") {
		t.Error("the Makefile does not take TAGS from exporter/build-tags")
	}
	m := regexp.MustCompile(`(?m)^  tags = (.*);$`).FindStringSubmatch(read(t, "package.nix"))
	if m == nil {
		t.Fatal("package.nix: no tags")
	}
	nixInstantiate := tool(t, "nix-instantiate")
	var stderr strings.Builder
	cmd := exec.Command(nixInstantiate, "--eval", "--strict", "--json", "-E", m[1])
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-instantiate --eval %s: %v\n%s", m[1], err, stderr.String())
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("package.nix tags evaluate to %s: %v", out, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("package.nix tags %q, want %q", got, want)
	}
	for _, v := range []string{"Version", "Revision", "Branch", "BuildUser", "BuildDate"} {
		if !strings.Contains(read(t, "package.nix"), "-X github.com/prometheus/common/version."+v+"=") {
			t.Errorf("package.nix does not stamp version.%s", v)
		}
	}
}

var vendorHashRE = regexp.MustCompile(`vendorHash = "(sha256-[A-Za-z0-9+/=]+)";`)

// TestVendorHash vendors the package's source file set as buildGoModule's
// goModules derivation does (`go mod vendor`, the whole vendor directory
// with modules.txt is the fixed output, hashed as a NAR with sha256) and
// compares with package.nix's vendorHash. -update-vendor-hash
// (`make nix-vendor-hash`) writes the new value.
func TestVendorHash(t *testing.T) {
	nixHash := tool(t, "nix-hash")
	pkg := read(t, "package.nix")
	fs := regexp.MustCompile(`(?s)fileset = lib\.fileset\.unions \[(.*?)\];`).FindStringSubmatch(pkg)
	if fs == nil {
		t.Fatal("package.nix: no lib.fileset.unions list")
	}
	src := t.TempDir()
	for _, m := range regexp.MustCompile(`\.\./([^\s\]]+)`).FindAllStringSubmatch(fs[1], -1) {
		cp := exec.Command("cp", "-r", "--parents", m[1], src)
		cp.Dir = ".."
		if out, err := cp.CombinedOutput(); err != nil {
			t.Fatalf("cp %s: %v\n%s", m[1], err, out)
		}
	}
	cmd := exec.Command("go", "mod", "vendor")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor of package.nix's file set fails, so buildGoModule would too (go.mod/go.sum not tidy?): %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(src, "vendor", "modules.txt")); err != nil {
		t.Fatal(err)
	}
	out := output(t, exec.Command(nixHash, "--type", "sha256", filepath.Join(src, "vendor")))
	raw, err := hex.DecodeString(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	want := "sha256-" + base64.StdEncoding.EncodeToString(raw)
	m := vendorHashRE.FindStringSubmatch(pkg)
	if m == nil {
		t.Fatal("package.nix: no vendorHash")
	}
	if m[1] == want {
		return
	}
	if *updateVendorHash {
		if err := os.WriteFile("package.nix", []byte(strings.Replace(pkg, m[0], `vendorHash = "`+want+`";`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("package.nix: vendorHash %s -> %s", m[1], want)
		return
	}
	t.Errorf("package.nix has vendorHash %s, go mod vendor gives %s: run `make nix-vendor-hash`", m[1], want)
}

// TestNixpkgsOptionsTable: every nixpkgs (or impermanence) file that
// testdata/nixpkgs-options.nix and nixpkgs-utils.nix follow has its row,
// with the commit read (or why there is none) and "read" or "from knowledge", in testdata/nixpkgs-options.md.
func TestNixpkgsOptionsTable(t *testing.T) {
	table := read(t, "testdata/nixpkgs-options.md")
	named := regexp.MustCompile(`nixos/[a-z/.-]+\.nix|github\.com/nix-community/impermanence`)
	row := regexp.MustCompile(`(?m)^\| .* \| (read|from knowledge) \|$`)
	rows := strings.Join(row.FindAllString(table, -1), "\n")
	seen := 0
	for _, f := range []string{"testdata/nixpkgs-options.nix", "testdata/nixpkgs-utils.nix"} {
		for _, m := range named.FindAllString(read(t, f), -1) {
			seen++
			key := m
			if strings.HasPrefix(m, "github.com/") {
				key = strings.TrimPrefix(m, "github.com/")
			}
			if !strings.Contains(rows, "`"+key+"`") && !strings.Contains(rows, key) {
				t.Errorf("%s follows %s, which has no row in testdata/nixpkgs-options.md", f, m)
			}
		}
	}
	if seen < 20 {
		t.Errorf("only %d nixpkgs files named in nixpkgs-options.nix: the scan is broken", seen)
	}
}
