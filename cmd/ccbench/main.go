// Command ccbench measures callcontrold against the figures we hold it to
// (BENCHMARKS.md): proxy throughput against a do-nothing server on the same
// kind of socket, memory for a million sessions, a hundred thousand timers
// firing in one second, and a restart with a hundred thousand sessions.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/internal/daemon"
	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/journal"
	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
	"github.com/callcontrol/callcontrol/internal/store"
)

func main() {
	what := flag.String("run", "proxy,daemon,memory,timers,restart", "comma-separated: proxy, daemon, prepaid, memory, daemonmem, timers, restart, listing, ctllist")
	conns := flag.Int("conns", 32, "proxy, load: client connections")
	connsList := flag.String("daemon-conns", "1,32", "daemon: comma-separated client connection counts, each measured in turn")
	syncs := flag.String("sync", "interval,no,yes", "daemon: comma-separated [CallControl] sync settings, one daemon each (interval/100ms sets sync_interval too)")
	dur := flag.Duration("duration", 5*time.Second, "proxy: how long each run lasts")
	sessions := flag.Int("sessions", 1_000_000, "memory, daemonmem: sessions to hold")
	timers := flag.Int("timers", 100_000, "timers: timers firing within one second")
	saved := flag.Int("saved", 100_000, "restart, listing, ctllist: sessions saved before the start")
	cli := flag.String("cli", "build/callcontrol", "ctllist: the CLI binary")
	listers := flag.Int("listers", 4, "listing: clients listing the sessions in a loop")
	bin := flag.String("daemon", "build/callcontrold", "daemon, restart: the daemon binary")
	rounds := flag.Int("rounds", 5, "daemon: rounds of loading each server in turn")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	serveNothing := flag.String("serve-nothing", "", "internal: serve the do-nothing server on `PATH` until killed")
	serveBound := flag.String("serve-engine-bound", "", "internal: serve on `PATH` a server making only a prepaid call's engine round trips to -engine, until killed")
	engineAddr := flag.String("engine", "", "serve-engine-bound: the rating engine's address")
	serveEngine := flag.Bool("serve-engine", false, "internal: run the fake rating engine, print its address, until killed")
	target := flag.String("target", "", "load: the proxy socket of a running daemon")
	loadPrepaid := flag.Bool("prepaid", false, "load: mark the calls prepaid (the daemon needs an engine: -serve-engine)")
	senv := flag.String("server-env", "", "daemon: `VAR=value,...` for the server processes")
	flag.Parse()
	if *senv != "" {
		serverEnv = strings.Split(*senv, ",")
	}
	if *serveNothing != "" {
		serveOn(*serveNothing, nothing{})
		return
	}
	if *serveBound != "" {
		serveEngineBound(*serveBound, *engineAddr)
		return
	}
	if *serveEngine {
		eng, err := ratingtest.Start()
		if err != nil {
			panic(err)
		}
		eng.SetRate("", 0.001)
		for i := 0; i < 64; i++ {
			eng.SetAccount(fmt.Sprintf("alice%d@example.com", i), ratingtest.Account{Balance: 1e12})
		}
		fmt.Println(eng.Addr())
		select {}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			panic(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("ccbench %s, GOMAXPROCS=%d, %s\n", time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), runtime.Version())
	for _, w := range strings.Split(*what, ",") {
		switch strings.TrimSpace(w) {
		case "proxy":
			benchProxy(*conns, *dur)
		case "load":
			r := load(*target, *conns, *dur, *loadPrepaid)
			fmt.Printf("\n== load: %s, %d connections, %s: %.0f cycles/s, request p50 %v p99 %v\n", *target, *conns, *dur, r.rate, r.p50, r.p99)
		case "daemon":
			benchDaemon(*bin, ints(*connsList), strings.Split(*syncs, ","), *dur, *rounds)
		case "prepaid":
			benchPrepaid(*bin, strings.Split(*syncs, ","), *dur, *rounds)
		case "memory":
			benchMemory(*sessions)
		case "timers":
			benchTimers(*timers)
		case "restart":
			benchRestart(*bin, *saved)
		case "listing":
			benchListing(*bin, *saved, *listers, *dur)
		case "ctllist":
			benchControlListing(*bin, *cli, *saved)
		case "daemonmem":
			benchDaemonMemory(*bin, *sessions, *dur)
		default:
			fmt.Fprintln(os.Stderr, "unknown benchmark", w)
			return
		}
	}
}

var quiet = slog.New(slog.DiscardHandler)

// serverEnv is added to the environment of the server processes started
// by the daemon benchmark (-server-env, e.g. GOMAXPROCS=1).
var serverEnv []string

// serveOn serves the proxy protocol on a Unix socket at path with h.
func serveOn(path string, h proxy.Handler) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		panic(err)
	}
	proxy.NewServer(ln, h, quiet, false).Serve()
}

// nothing answers every request "Ok": the do-nothing baseline.
type nothing struct{}

func (nothing) Handle(*proxy.Request, time.Time) string { return proxy.Ok }

func benchProxy(conns int, dur time.Duration) {
	dir, _ := os.MkdirTemp("", "ccbench")
	defer os.RemoveAll(dir)
	fmt.Printf("\n== proxy: init+start+stop cycles/s, %d connections, %s per run\n", conns, dur)

	serveAndLoad(filepath.Join(dir, "warmup.sock"), nothing{}, conns, dur/4) // warm up the runtime
	base := serveAndLoad(filepath.Join(dir, "nothing.sock"), nothing{}, conns, dur)
	fmt.Printf("do-nothing server (same parser and socket):  %8.0f cycles/s\n", base)

	{
		m := session.NewManager(session.Limits{Limit: 3600, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
			StaleTimeout: time.Hour, ProxyTimeout: 500 * time.Millisecond}, nil, &dialogtest.Ender[dialog.Target]{}, sessiontest.DiscardJournal(), quiet)
		got := serveAndLoad(filepath.Join(dir, "cc-nolog.sock"), daemon.ProxyHandler(m, true, quiet), conns, dur)
		m.Shutdown()
		fmt.Printf("callcontrold, no state log (memory only):     %8.0f cycles/s  (%.0f%% of do-nothing)\n", got, 100*got/base)
	}
	{
		lg := daemon.NewStderrLogger(io.Discard, false)
		m := session.NewManager(session.Limits{Limit: 3600, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
			StaleTimeout: time.Hour, ProxyTimeout: 500 * time.Millisecond}, nil, &dialogtest.Ender[dialog.Target]{}, sessiontest.DiscardJournal(), lg.Logger)
		got := serveAndLoad(filepath.Join(dir, "cc-logging.sock"), daemon.ProxyHandler(m, true, lg.Logger), conns, dur)
		m.Shutdown()
		lg.Close()
		fmt.Printf("callcontrold, no state log, info logging:      %8.0f cycles/s  (%.0f%% of do-nothing)\n", got, 100*got/base)
	}
	for _, sync := range []string{"interval", "no", "yes"} {
		opts := map[string]store.Options{"interval": {NoSync: true, FlushEvery: 100 * time.Millisecond}, "no": {NoSync: true}, "yes": {}}[sync]
		// The daemon's journal, without debits (postpaid calls).
		j, err := journal.Open(filepath.Join(dir, "state-"+sync), journal.Options{Store: opts}, quiet)
		if err != nil {
			panic(err)
		}
		m := session.NewManager(session.Limits{Limit: 3600, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
			StaleTimeout: time.Hour, ProxyTimeout: 500 * time.Millisecond}, nil, &dialogtest.Ender[dialog.Target]{}, j, quiet)
		got := serveAndLoad(filepath.Join(dir, fmt.Sprintf("cc-%s.sock", sync)), daemon.ProxyHandler(m, true, quiet), conns, dur)
		m.Shutdown()
		j.Close(nil)
		fmt.Printf("callcontrold, state log sync = %-8s:       %8.0f cycles/s  (%.0f%% of do-nothing)\n", sync, got, 100*got/base)
	}
}

// serveAndLoad serves h on path and runs conns clients doing
// init/start/stop cycles for dur; it returns the cycles per second.
func serveAndLoad(path string, h proxy.Handler, conns int, dur time.Duration) float64 {
	ln, err := net.Listen("unix", path)
	if err != nil {
		panic(err)
	}
	srv := proxy.NewServer(ln, h, quiet, false)
	go srv.Serve()
	defer srv.Close()
	return load(path, conns, dur, false).rate
}

// loadResult is what a load run measured: complete call cycles per
// second, and the latency of single requests (write to reply read).
type loadResult struct {
	rate     float64
	p50, p99 time.Duration
}

func ints(list string) []int {
	var out []int
	for _, f := range strings.Split(list, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n < 1 {
			panic("bad connection count " + f)
		}
		out = append(out, n)
	}
	return out
}

// load runs conns clients doing init/start/stop cycles against the proxy
// socket at path for dur; it returns the cycles per second and request
// latencies. prepaid marks the calls prepaid (the daemon asks the rating
// engine at init and start, and debits at stop).
func load(path string, conns int, dur time.Duration, prepaid bool) loadResult {
	var cycles atomic.Int64
	var wg sync.WaitGroup
	lats := make([][]time.Duration, conns)
	pp := "false"
	if prepaid {
		pp = "true"
	}
	stop := time.Now().Add(dur)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.Dial("unix", path)
			if err != nil {
				panic(err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			lat := make([]time.Duration, 0, 1<<16)
			defer func() { lats[i] = lat }()
			for n := 0; time.Now().Before(stop); n++ {
				id := fmt.Sprintf("%d-%d@bench", i, n)
				for _, req := range [...]string{
					"init\r\nruri: sip:0031650222333@example.com\r\ndiverter: None\r\nsourceip: 10.0.0.1\r\ncallid: " + id +
						"\r\nfrom: \"Alice\" <sip:alice" + fmt.Sprint(i) + "@example.com>;tag=a73\r\nfromtag: a73\r\nprepaid: " + pp + "\r\ncall_limit: 0\r\ncall_token: None\r\n\r\n",
					"start\r\ncallid: " + id + "\r\ndialogid: 1079:6296\r\n\r\n",
					"stop\r\ncallid: " + id + "\r\n\r\n",
				} {
					t0 := time.Now()
					io.WriteString(c, req)
					if _, err := r.ReadString('\n'); err != nil {
						panic(err)
					}
					lat = append(lat, time.Since(t0))
				}
				cycles.Add(1)
			}
		}(i)
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[int(p*float64(len(all)-1))]
	}
	return loadResult{rate: float64(cycles.Load()) / dur.Seconds(), p50: q(0.50), p99: q(0.99)}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

func benchMemory(n int) {
	fmt.Printf("\n== memory: %d answered sessions with a running timer\n", n)
	before := heapInUse()
	m := session.NewManager(session.Limits{Limit: 36000, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
		StaleTimeout: 48 * time.Hour, ProxyTimeout: 500 * time.Millisecond}, nil, &dialogtest.Ender[dialog.Target]{}, sessiontest.DiscardJournal(), quiet)
	now := time.Now()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%08x-%04x-bench@10.0.0.%d", i, i&0xffff, i%250)
		r := &session.InitRequest{CallID: id, RURI: fmt.Sprintf("sip:0031650%06d@example.com", i%1000000),
			Diverter: "None", SourceIP: "10.0.0.1", From: fmt.Sprintf(`"User %d" <sip:user%d@example.com>;tag=x`, i, i%200000),
			FromTag: fmt.Sprintf("tag%08x", i), Prepaid: "false", CallLimit: "0", CallToken: "None"}
		if m.Init(r, now) != session.ReplyLimited || m.Start(id, "1079:6296", now) != session.ReplyOk {
			panic("bench call refused")
		}
	}
	after := heapInUse()
	pending, inProgress, parties := m.Counts()
	fmt.Printf("sessions %d (in progress %d, pending %d), parties %d\n", pending+inProgress, inProgress, pending, parties)
	fmt.Printf("heap+stacks in use: %.0f MiB (%.0f bytes per session); target < 1024 MiB\n",
		float64(after-before)/(1<<20), float64(after-before)/float64(n))
	m.Shutdown()
}

// timeEnder records when each end request was made.
type timeEnder struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (e *timeEnder) End(t dialog.Target) {
	now := time.Now()
	e.mu.Lock()
	e.at[t.CallID] = now
	e.mu.Unlock()
}

func benchTimers(n int) {
	fmt.Printf("\n== timers: %d calls whose limits run out within one second\n", n)
	e := &timeEnder{at: make(map[string]time.Time, n)}
	m := session.NewManager(session.Limits{Limit: 3600, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
		StaleTimeout: time.Hour, ProxyTimeout: 500 * time.Millisecond}, nil, e, sessiontest.DiscardJournal(), quiet)
	start := time.Now().Add(3 * time.Second)
	due := make(map[string]time.Time, n)
	var restored []*session.Session
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("timer-%d", i)
		end := start.Add(time.Duration(i) * time.Second / time.Duration(n))
		due[id] = end
		restored = append(restored, &session.Session{CallID: id, Party: fmt.Sprintf("sip:u%d@example.com", i%50000),
			RURI: "sip:d@example.com", Limit: 3600, Cap: session.NoLimit, HasDialog: true,
			Created: end.Add(-time.Hour), Answered: end.Add(-time.Hour), EndAt: end})
	}
	m.Restore(restored)
	time.Sleep(time.Until(start.Add(time.Second + 2*time.Second)))
	// Stopped before the count, outside e.mu: a call still expiring on a
	// loaded machine holds the manager's lock while it asks e to end its
	// dialog, and Shutdown waits for that lock.
	m.Shutdown()
	e.mu.Lock()
	var late []time.Duration
	for id, d := range due {
		if at, ok := e.at[id]; ok {
			late = append(late, at.Sub(d))
		}
	}
	e.mu.Unlock()
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	missed := n - len(late)
	q := func(p float64) time.Duration {
		if len(late) == 0 {
			return 0
		}
		return late[int(p*float64(len(late)-1))]
	}
	fmt.Printf("fired %d, missed %d; lateness p50 %v, p99 %v, max %v; target p99 < 50ms, none missed\n",
		len(late), missed, q(0.5).Round(time.Microsecond), q(0.99).Round(time.Microsecond), q(1).Round(time.Microsecond))
}

// savedDaemon prepares a daemon over a state dir holding n saved
// sessions: its dir (the caller removes it), proxy socket and command, not
// started. extra is added to [CallControl].
func savedDaemon(bin, name string, n int, extra string) (dir, sock string, cmd *exec.Cmd) {
	dir, _ = os.MkdirTemp("", "ccbench-"+name)
	state := filepath.Join(dir, "state")
	saveSessions(state, n)
	sock = filepath.Join(dir, "socket")
	os.WriteFile(filepath.Join(dir, "config.ini"), []byte(fmt.Sprintf(
		"[CallControl]\nsocket = %s\nlimit = 3600\nstate_dir = %s\ngroup = nogroup\n%s[Kamailio]\nsocket_path = %s/kam.sock\n",
		sock, state, extra, dir)), 0o644)
	return dir, sock, daemonCmd(bin, dir)
}

// daemonCmd is the daemon binary in the foreground with its configuration
// and runtime files in dir; its log goes to stderr with CCBENCH_DAEMON_LOG.
func daemonCmd(bin, dir string) *exec.Cmd {
	cmd := exec.Command(bin, "--no-fork", "--config-dir", dir, "--runtime-dir", dir)
	if os.Getenv("CCBENCH_DAEMON_LOG") != "" {
		cmd.Stderr = os.Stderr
	}
	return cmd
}

func benchRestart(bin string, n int) {
	fmt.Printf("\n== restart: %d saved sessions, time from exec until the proxy socket answers\n", n)
	if _, err := os.Stat(bin); err != nil {
		fmt.Println("skipped: build the daemon first (make build):", err)
		return
	}
	dir, sock, cmd := savedDaemon(bin, "restart", n, "")
	defer os.RemoveAll(dir)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			io.WriteString(c, "debug\r\nshow: session\r\ncallid: 00000000-restart@10.0.0.1\r\n\r\n")
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil {
				fmt.Printf("answered after %v: %q; target < 1s\n", time.Since(t0).Round(time.Millisecond), strings.TrimSpace(line))
				return
			}
		}
		if time.Since(t0) > 30*time.Second {
			fmt.Println("no answer within 30 s")
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// benchDaemon loads the real callcontrold binary (logging every call at
// info level to a file, as in production), one daemon per sync setting,
// and compares each with the do-nothing server on the same kind of socket.
// The servers run side by side and are loaded in turn, round after round:
// the machine is shared, and its speed drifts by tens of percent within a
// minute, so each ratio compares runs a few seconds apart and the median
// round is the figure. Each connection count is measured in turn.
func benchDaemon(bin string, connsList []int, syncs []string, dur time.Duration, rounds int) {
	fmt.Printf("\n== daemon: the callcontrold binary, init+start+stop cycles/s, connections %v, %d rounds of %s per server\n", connsList, rounds, dur)
	if _, err := os.Stat(bin); err != nil {
		fmt.Println("skipped: build the daemon first (make build):", err)
		return
	}
	dir, _ := os.MkdirTemp("", "ccbench-daemon")
	defer os.RemoveAll(dir)

	self, _ := os.Executable()
	nothing := &server{name: "do-nothing server process (same parser)", sock: filepath.Join(dir, "nothing.sock")}
	nothing.cmd = exec.Command(self, "-serve-nothing", nothing.sock)
	servers := []*server{nothing}
	for i, sync := range syncs {
		// "interval/100ms" is sync = interval with sync_interval = 100ms.
		sync, every, _ := strings.Cut(strings.TrimSpace(sync), "/")
		name, cc := "callcontrold, sync = "+sync, "sync = "+sync+"\n"
		if every != "" {
			name += " " + every
			cc += "sync_interval = " + every + "\n"
		}
		sv := newDaemonServer(bin, filepath.Join(dir, fmt.Sprint("run-", i)), name, cc)
		defer sv.logf.Close()
		servers = append(servers, sv)
	}
	for _, sv := range servers {
		sv.start()
	}
	for _, conns := range connsList {
		fmt.Printf("\n-- %d connection(s): cycles/s (ratio to do-nothing), request p99 (ratio)\n", conns)
		compare(servers, conns, dur, rounds, false)
	}
	for _, sv := range servers {
		sv.stop(sv == nothing)
		if sv != nothing {
			fmt.Printf("%-40s server CPU %s%s\n", sv.name, cpuPerCycle(sv.cmd.ProcessState, sv.cycles), sv.logLines())
		} else {
			fmt.Printf("%-40s server CPU %s\n", sv.name, cpuPerCycle(sv.cmd.ProcessState, sv.cycles))
		}
	}
}

type server struct {
	name   string
	sock   string
	cmd    *exec.Cmd
	log    string
	logf   *os.File
	cycles float64
}

// newDaemonServer prepares callcontrold in run with extra config lines in
// [CallControl] (and extraIni appended after the section).
func newDaemonServer(bin, run, name, cc string, extraIni ...string) *server {
	os.MkdirAll(run, 0o755)
	sv := &server{name: name, sock: filepath.Join(run, "socket"), log: filepath.Join(run, "daemon.log")}
	os.WriteFile(filepath.Join(run, "config.ini"), []byte(fmt.Sprintf(
		"[CallControl]\nsocket = %s\nlimit = 3600\nstate_dir = %s/state\n%sgroup = nogroup\n[Kamailio]\nsocket_path = %s/kam.sock\n%s",
		sv.sock, run, cc, run, strings.Join(extraIni, ""))), 0o644)
	sv.cmd = exec.Command(bin, "--no-fork", "--config-dir", run, "--runtime-dir", run)
	sv.logf, _ = os.Create(sv.log)
	sv.cmd.Stderr = sv.logf
	return sv
}

func (sv *server) start() {
	sv.cmd.Env = append(os.Environ(), serverEnv...)
	if err := sv.cmd.Start(); err != nil {
		panic(err)
	}
	waitSocket(sv.sock)
}

func (sv *server) stop(kill bool) {
	if kill {
		sv.cmd.Process.Kill()
	} else {
		sv.cmd.Process.Signal(os.Interrupt)
	}
	sv.cmd.Wait()
}

func (sv *server) logLines() string {
	if sv.log == "" {
		return ""
	}
	b, err := os.ReadFile(sv.log)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (%d log lines)", bytes.Count(b, []byte("\n")))
}

// compare loads servers[0] (the reference) and the others in turn, rounds
// times, and prints each round and the medians of the ratios.
func compare(servers []*server, conns int, dur time.Duration, rounds int, prepaid bool) [][]loadResult {
	for _, sv := range servers {
		sv.cycles += load(sv.sock, conns, dur/4, prepaid).rate * dur.Seconds() / 4 // warm up
	}
	res := make([][]loadResult, len(servers))
	for r := 0; r < rounds; r++ {
		fmt.Printf("round %d:", r+1)
		for i, sv := range servers {
			lr := load(sv.sock, conns, dur, prepaid)
			res[i] = append(res[i], lr)
			sv.cycles += lr.rate * dur.Seconds()
			fmt.Printf("  %6.0f", lr.rate)
			if i > 0 {
				fmt.Printf(" (%3.0f%%)", 100*lr.rate/res[0][r].rate)
			}
			fmt.Printf(" p99 %v", lr.p99.Round(time.Microsecond))
		}
		fmt.Println()
	}
	for i, sv := range servers {
		rates, p50s, p99s, ratios, p99r := make([]float64, rounds), make([]float64, rounds), make([]float64, rounds), make([]float64, rounds), make([]float64, rounds)
		for r, lr := range res[i] {
			rates[r], p50s[r], p99s[r] = lr.rate, float64(lr.p50), float64(lr.p99)
			ratios[r] = lr.rate / res[0][r].rate
			p99r[r] = float64(lr.p99) / float64(res[0][r].p99)
		}
		verdict := ""
		if i > 0 {
			verdict = fmt.Sprintf("  %.2f of do-nothing (rounds %.2f-%.2f), p99 %.2fx", median(ratios), slices.Min(ratios), slices.Max(ratios), median(p99r))
		}
		fmt.Printf("%-40s %6.0f cycles/s, p50 %v, p99 %v (medians)%s\n", sv.name, median(rates),
			time.Duration(median(p50s)).Round(time.Microsecond), time.Duration(median(p99s)).Round(time.Microsecond), verdict)
	}
	return res
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func waitSocket(path string) {
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return
		}
		if i > 3000 {
			panic("nothing listens on " + path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cpuPerCycle is a server process's CPU time (user+system, start-up
// included) per call cycle served. It moves less than throughput with
// what else the shared machine runs, so it shows what a change saves.
func cpuPerCycle(ps *os.ProcessState, cycles float64) string {
	if ps == nil || cycles < 1 {
		return "?"
	}
	us := float64(ps.UserTime()+ps.SystemTime()) / float64(time.Microsecond) / cycles
	return fmt.Sprintf("%5.1f µs/cycle", us)
}

// benchPrepaid shows prepaid calls on one connection beside what the
// rating engine allows: the fake engine (internal/rating/ratingtest,
// answering at once) is loaded first by the project's own client doing
// what a prepaid call costs it (MaxSessionTime at init, again at start,
// DebitBalance at the end), then a daemon per sync setting is loaded with
// prepaid calls, beside the do-nothing server.
func benchPrepaid(bin string, syncs []string, dur time.Duration, rounds int) {
	fmt.Printf("\n== prepaid: one connection, init+start+stop cycles/s with the fake rating engine answering at once, %d rounds of %s\n", rounds, dur)
	if _, err := os.Stat(bin); err != nil {
		fmt.Println("skipped: build the daemon first (make build):", err)
		return
	}
	// Each server gets an engine process of its own, and so does the
	// engine's own measurement: the engine is single-threaded, and a
	// daemon still delivering debits from its own rounds must not slow
	// the next one down.
	self, _ := os.Executable()
	var engines []*exec.Cmd
	defer func() {
		for _, e := range engines {
			e.Process.Kill()
			e.Wait()
		}
	}()
	startEngine := func() string {
		cmd := exec.Command(self, "-serve-engine")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		engines = append(engines, cmd)
		addr, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			panic(err)
		}
		return strings.TrimSpace(addr)
	}
	alone := startEngine()
	dir, _ := os.MkdirTemp("", "ccbench-prepaid")
	defer os.RemoveAll(dir)
	nothing := &server{name: "do-nothing server process (same parser)", sock: filepath.Join(dir, "nothing.sock")}
	nothing.cmd = exec.Command(self, "-serve-nothing", nothing.sock)
	bound := &server{name: "engine round trips only (no daemon)", sock: filepath.Join(dir, "bound.sock")}
	bound.cmd = exec.Command(self, "-serve-engine-bound", bound.sock, "-engine", startEngine())
	servers := []*server{nothing, bound}
	for i, sync := range syncs {
		sync, every, _ := strings.Cut(strings.TrimSpace(sync), "/")
		name, cc := "callcontrold prepaid, sync = "+sync, "sync = "+sync+"\n"
		if every != "" {
			name += " " + every
			cc += "sync_interval = " + every + "\n"
		}
		sv := newDaemonServer(bin, filepath.Join(dir, fmt.Sprint("run-", i)), name, cc,
			fmt.Sprintf("[CDRTool]\naddress = %s\n", startEngine()))
		defer sv.logf.Close()
		servers = append(servers, sv)
	}
	for _, s := range servers {
		s.start()
	}
	engineRate := func() float64 {
		pool := rating.NewPool([]string{alone}, rating.Options{}, quiet)
		defer pool.Close()
		ctx := context.Background()
		stop := time.Now().Add(dur)
		n := 0
		for ; time.Now().Before(stop); n++ {
			id := fmt.Sprintf("engine-%d@bench", n)
			r := rating.Request{CallID: id, From: "sip:alice0@example.com", To: "sip:0031650222333@example.com",
				Gateway: "10.0.0.1", Application: "audio", Duration: 3600}
			if _, err := pool.MaxSessionTime(ctx, alone, r); err != nil {
				panic(err)
			}
			r.Connected = true
			if _, err := pool.MaxSessionTime(ctx, alone, r); err != nil {
				panic(err)
			}
			if _, err := pool.DebitBalance(ctx, alone, rating.Debit{CallID: id, From: r.From, To: r.To,
				Gateway: r.Gateway, Application: r.Application, Duration: 0}); err != nil {
				panic(err)
			}
		}
		return float64(n) / dur.Seconds()
	}
	var engRates []float64
	for r := 0; r < rounds; r++ {
		engRates = append(engRates, engineRate())
	}
	fmt.Printf("rating engine process alone (MaxSessionTime x2 + DebitBalance per call, one client): %6.0f calls/s median (rounds %.0f-%.0f)\n",
		median(engRates), slices.Min(engRates), slices.Max(engRates))
	res := compare(servers, 1, dur, rounds, true)
	for i, s := range servers[2:] {
		ratios := make([]float64, rounds)
		for r := range ratios {
			ratios[r] = res[i+2][r].rate / res[1][r].rate
		}
		fmt.Printf("%-40s %.2f of the engine round trips alone (rounds %.2f-%.2f)\n", s.name, median(ratios), slices.Min(ratios), slices.Max(ratios))
	}
	for _, s := range servers {
		s.stop(s == nothing || s == bound)
		if s != nothing {
			fmt.Printf("%-40s server CPU %s%s\n", s.name, cpuPerCycle(s.cmd.ProcessState, s.cycles), s.logLines())
		}
	}
}
