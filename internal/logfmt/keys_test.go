package logfmt_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// banned are keys with a documented spelling elsewhere: operators grep
// callid= and err= (docs/operators.md), and durations say their unit.
var banned = map[string]string{
	"call_id": "callid",
	"callID":  "callid",
	"error":   "err",
	"took":    "took_ms",
}

var keyForm = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// kvStart is where key/value pairs begin in a logging call, by method or
// function name.
var kvStart = map[string]int{
	"Debug": 1, "Info": 1, "Warn": 1, "Error": 1,
	"DebugContext": 2, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2,
	"Log": 3, "With": 0,
	"finish": 3, // dialog.Client.finish(r, outcome, final, kv...)
}

// attrFuncs are slog's attribute constructors: their first argument is a key.
var attrFuncs = map[string]bool{"String": true, "Int": true, "Int64": true, "Uint64": true, "Float64": true,
	"Bool": true, "Time": true, "Duration": true, "Any": true, "Group": true}

// TestLogKeys reads every log call site of the daemon and the CLI (go/ast,
// not a regexp) and checks that each literal key is lower snake case and
// uses the one spelling operators grep for.
func TestLogKeys(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	sites := 0
	check := func(pos token.Pos, key string) {
		sites++
		p := fset.Position(pos)
		if want, ok := banned[key]; ok {
			t.Errorf("%s:%d: log key %q: write %q", p.Filename, p.Line, key, want)
		} else if !keyForm.MatchString(key) {
			t.Errorf("%s:%d: log key %q is not lower snake case", p.Filename, p.Line, key)
		}
	}
	literal := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	isAttr := func(e ast.Expr) bool {
		call, ok := e.(*ast.CallExpr)
		if !ok {
			return false
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return false
		}
		pkg, ok := sel.X.(*ast.Ident)
		return ok && pkg.Name == "slog" && attrFuncs[sel.Sel.Name]
	}
	pairs := func(args []ast.Expr) {
		for i := 0; i < len(args); i++ {
			if isAttr(args[i]) {
				continue
			}
			if k, ok := literal(args[i]); ok {
				check(args[i].Pos(), k)
			}
			i++ // the value
		}
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "testdata" || strings.HasPrefix(name, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				var name string
				switch fun := n.Fun.(type) {
				case *ast.SelectorExpr:
					name = fun.Sel.Name
					if pkg, ok := fun.X.(*ast.Ident); ok && pkg.Name == "slog" && attrFuncs[name] && len(n.Args) > 0 {
						if k, ok := literal(n.Args[0]); ok {
							check(n.Args[0].Pos(), k)
						}
						return true
					}
				case *ast.Ident:
					name = fun.Name
				}
				if start, ok := kvStart[name]; ok && len(n.Args) > start {
					pairs(n.Args[start:])
				}
			case *ast.CompositeLit:
				// []any{"key", value, ...}: attributes built up front.
				if arr, ok := n.Type.(*ast.ArrayType); ok {
					if id, ok := arr.Elt.(*ast.Ident); ok && id.Name == "any" {
						pairs(n.Elts)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sites < 100 {
		t.Fatalf("only %d log keys found: the scan is not reading the call sites", sites)
	}
}
