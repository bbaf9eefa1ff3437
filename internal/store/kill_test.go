package store

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKill9 runs writers in a child process, kills it with SIGKILL while
// they commit, and checks that every batch the child saw acknowledged
// (Wait returned nil, then it printed the batch) is there after Open, and
// that every batch is whole, in each durability setting: rounds 0 to 2
// fsync (sync = yes), 3 to 5 NoSync (sync = no), 6 to 8 NoSync with the
// interval flush (sync = interval, the daemon's default). With NoSync
// values are big enough to wrap the ring (acknowledged batches are
// there, or in a segment, when the child dies) and to rotate segments.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("STORE_KILL9_CHILD"); dir != "" {
		kill9Child(dir, os.Getenv("STORE_KILL9_MODE"))
		return
	}
	for round := range 9 {
		mode := [...]string{"yes", "no", "interval"}[round/3]
		noSync := mode != "yes"
		dir := t.TempDir()
		cmd, out := startChild(t, "TestKill9", "STORE_KILL9_CHILD="+dir, "STORE_KILL9_MODE="+mode)
		var acked []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if k, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
				acked = append(acked, k)
				if len(acked) == 500*(round%3+1) {
					cmd.Process.Kill()
					break
				}
			}
		}
		cmd.Wait()
		if len(acked) < 500*(round%3+1) {
			t.Fatalf("child acknowledged only %d batches", len(acked))
		}
		l, live, err := Open(dir, Options{}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range acked {
			if v := string(live[k]); v != value(k, noSync) || string(live[k+"/twin"]) != v {
				t.Fatalf("round %d (%s): acknowledged batch %s lost", round, mode, k)
			}
		}
		for k, v := range live {
			base, _ := strings.CutSuffix(k, "/twin")
			if string(live[base]) != string(v) || string(live[base+"/twin"]) != string(v) {
				t.Fatalf("round %d (%s): half a batch for %s", round, mode, base)
			}
		}
		l.Close()
	}
}

// value is a batch's value: in NoSync rounds 4 KiB, so a thousand
// batches wrap the ring and a few hundred fill a segment.
func value(k string, big bool) string {
	if big {
		return k + strings.Repeat(".", 4096)
	}
	return k
}

// openChild opens dir in a child process with the options of a sync
// setting ("yes", "no" or "interval"), or exits saying why it cannot.
func openChild(dir, mode string) *Log {
	opts := Options{NoSync: mode != "yes"}
	if mode == "interval" {
		opts.FlushEvery = 20 * time.Millisecond
	}
	l, _, err := Open(dir, opts, quiet())
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	return l
}

func kill9Child(dir, mode string) {
	noSync := mode != "yes"
	l := openChild(dir, mode)
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				k := fmt.Sprintf("g%d/%d", g, i)
				v := []byte(value(k, noSync))
				if err := l.Apply(Put(k, v), Put(k+"/twin", v)).Wait(); err != nil {
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

// TestStagedWithoutWaiterSurvivesKill9: a batch staged and never waited
// for, with nothing applied after it, is written all the same (with
// NoSync a staged batch is left to its waiter; here there is none), so
// it survives a kill -9, in each NoSync setting.
func TestStagedWithoutWaiterSurvivesKill9(t *testing.T) {
	if dir := os.Getenv("STORE_STAGED_CHILD"); dir != "" {
		stagedChild(dir, os.Getenv("STORE_STAGED_MODE"))
		return
	}
	for _, mode := range []string{"no", "interval"} {
		dir := t.TempDir()
		cmd, out := startChild(t, "TestStagedWithoutWaiterSurvivesKill9", "STORE_STAGED_CHILD="+dir, "STORE_STAGED_MODE="+mode)
		line, _ := bufio.NewReader(out).ReadString('\n')
		cmd.Process.Kill()
		cmd.Wait()
		if line != "written\n" {
			t.Fatalf("%s: the child says %q", mode, line)
		}
		l, live, err := Open(dir, Options{}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		if string(live["staged"]) != "v" {
			t.Fatalf("%s: the staged batch nobody waited for was lost", mode)
		}
		l.Close()
	}
}

// stagedChild stages one batch, never waits for it, and says "written"
// once the log has written it (or gives up after a long while).
func stagedChild(dir, mode string) {
	l := openChild(dir, mode)
	l.Stage(Put("staged", []byte("v")))
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if l.Stats().Batches == 1 {
			fmt.Println("written")
			select {} // until killed
		}
	}
	fmt.Println("never written")
	os.Exit(1)
}

// startChild runs this test binary again for the test named test, with env
// added, and returns it running with its standard output.
func startChild(t *testing.T, test string, env ...string) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}
