// Package importgraph holds no code: its test checks the import rules of
// docs/design.md ("Package graph") on the module's packages.
package importgraph
