package importgraph

import (
	"errors"
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// anyPackage, as a forbidden entry, stands for every package of the module.
const anyPackage = "..."

// rules: pkg may not depend, directly or through other packages of the
// module, on any of forbidden (paths relative to the module; only the
// packages' own files count, not their tests).
var rules = []struct {
	pkg       string
	forbidden []string
	reason    string
}{
	{"internal/session", []string{"internal/proxy", "internal/control", "internal/web", "internal/acct", "internal/dialog",
		"internal/unixsock", "internal/metrics", "internal/daemon", "internal/store", "internal/journal", "internal/config", "internal/debit"},
		"session holds the rules of calls; the sockets, peers and files that carry them are adapters (in daemon) that call it " +
			"through its own small interfaces, so it can be read and tested without any of them"},
	{"internal/config", []string{"internal/session", "internal/rating", "internal/debit", "internal/dialog", "internal/acct",
		"internal/store", "internal/journal", "internal/proxy", "internal/control", "internal/web", "internal/daemon"},
		"config reads a file into values; every package may read a Config, so config importing one of them would tie " +
			"the file's format to that package's code (and risk a cycle)"},
	{"internal/sipdialog", []string{anyPackage},
		"the dialog vocabulary session and dialog share; a leaf, so session names dialogs without the dialog transport"},
	{"internal/budget", []string{anyPackage},
		"the proxy's time budget config, daemon and session all read; a leaf, so config derives defaults without a domain package"},
	{"internal/radacct", []string{anyPackage},
		"the radacct names config checks and acct reads; a leaf, so config checks them without importing acct"},
}

func TestImportRules(t *testing.T) {
	mod, root := module(t)
	graph := imports(t, mod, root)
	for _, r := range rules {
		if _, ok := graph[r.pkg]; !ok {
			t.Errorf("rule for %s: no such package (rename the rule with the package)", r.pkg)
			continue
		}
		deps := reach(graph, r.pkg)
		for _, dep := range keys(deps) {
			if slices.Contains(r.forbidden, dep) || slices.Contains(r.forbidden, anyPackage) {
				t.Errorf("%s imports %s (%s): %s", r.pkg, dep, strings.Join(append(deps[dep], dep), " -> "), r.reason)
			}
		}
	}
}

// The test must see the graph it claims to check: the module's packages
// and session's known imports.
func TestGraphIsRead(t *testing.T) {
	mod, root := module(t)
	graph := imports(t, mod, root)
	for _, p := range []string{"internal/session", "internal/daemon", "internal/proxy", "cmd/callcontrold"} {
		if _, ok := graph[p]; !ok {
			t.Fatalf("package %s not found in %v", p, keys(graph))
		}
	}
	if !slices.Contains(graph["internal/session"], "internal/rating") || !slices.Contains(graph["internal/daemon"], "internal/session") {
		t.Fatalf("imports not read: session %v", graph["internal/session"])
	}
	if _, ok := reach(graph, "cmd/callcontrold")["internal/session"]; !ok {
		t.Fatal("cmd/callcontrold does not reach internal/session through daemon")
	}
}

// module returns the module path and its root directory.
func module(t *testing.T) (string, string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.TrimSpace(p), root
		}
	}
	t.Fatal("go.mod names no module")
	return "", ""
}

// imports maps each package of the module (relative path) to the module
// packages its non-test files import.
func imports(t *testing.T, mod, root string) map[string][]string {
	t.Helper()
	graph := map[string][]string{}
	err := filepath.WalkDir(root, func(dir string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); dir != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") ||
			strings.HasPrefix(name, "_") || name == "node_modules") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			var none *build.NoGoError
			if errors.As(err, &none) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, dir)
		var deps []string
		for _, imp := range pkg.Imports {
			if p, ok := strings.CutPrefix(imp, mod+"/"); ok {
				deps = append(deps, p)
			}
		}
		graph[filepath.ToSlash(rel)] = deps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}

// reach returns every module package pkg depends on, each with the path
// of imports that reaches it first (breadth first: a shortest one).
func reach(graph map[string][]string, pkg string) map[string][]string {
	via := map[string][]string{}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, dep := range graph[p] {
			if _, seen := via[dep]; seen || dep == pkg {
				continue
			}
			via[dep] = append(append([]string(nil), via[p]...), p)
			queue = append(queue, dep)
		}
	}
	return via
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
