package store

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// TestKill9 runs writers in a child process, kills it with SIGKILL while
// they commit, and checks that every batch the child saw acknowledged
// (Wait returned nil, then it printed the batch) is there after Open, and
// that every batch is whole.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("STORE_KILL9_CHILD"); dir != "" {
		kill9Child(dir)
		return
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
		cmd.Env = append(os.Environ(), "STORE_KILL9_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var acked []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if k, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
				acked = append(acked, k)
				if len(acked) == 500*(round+1) {
					cmd.Process.Kill()
					break
				}
			}
		}
		cmd.Wait()
		if len(acked) < 500*(round+1) {
			t.Fatalf("child acknowledged only %d batches", len(acked))
		}
		l, live, err := Open(dir, Options{}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range acked {
			if string(live[k]) != k || string(live[k+"/twin"]) != k {
				t.Fatalf("round %d: acknowledged batch %s lost", round, k)
			}
		}
		for k, v := range live {
			base, _ := strings.CutSuffix(k, "/twin")
			if string(live[base]) != string(v) || string(live[base+"/twin"]) != string(v) {
				t.Fatalf("round %d: half a batch for %s", round, base)
			}
		}
		l.Close()
	}
}

func kill9Child(dir string) {
	l, _, err := Open(dir, Options{}, quiet())
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				k := fmt.Sprintf("g%d/%d", g, i)
				if err := l.Apply(Put(k, []byte(k)), Put(k+"/twin", []byte(k))).Wait(); err != nil {
					return
				}
				mu.Lock()
				fmt.Fprintf(w, "acked %s\n", k)
				w.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
