// Package metrics is callcontrold's Prometheus instrumentation, built on
// github.com/prometheus/client_golang.
//
// Most of it costs nothing on the call path: a Collector reads the
// daemon's existing counters and gauges (a State) when Prometheus scrapes.
// Only what has no counter elsewhere is counted as it happens, with
// client_golang's atomic counters and histograms resolved ahead of time:
// proxy requests (Proxy), rating requests (Rating) and state log fsyncs
// (SyncObserver).
package metrics

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric of the daemon.
const Namespace = "callcontrol"

// Metrics is one daemon's registry. There is no global registry: two
// daemons in one test process each have their own.
type Metrics struct {
	reg    *prometheus.Registry
	Proxy  *Proxy
	Rating *Rating
	fsync  prometheus.Histogram
}

// New registers the daemon's metrics, the Go runtime and process
// collectors and build info; state is read at every scrape.
func New(version string, state func() State) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, Proxy: newProxy(), Rating: newRating()}
	m.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "state_log_fsync_duration_seconds",
		Help:    "Latency of the state log's fdatasync, one per group commit (sync = yes only).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels say which callcontrold is running.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		info, m.fsync, m.Proxy.requests, m.Proxy.latency, m.Rating.requests, m.Rating.latency,
		&collector{state: state, metrics: metricList()},
	)
	return m
}

// Registry is what /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SyncObserver records one fsync's latency (store.Options.OnSync).
func (m *Metrics) SyncObserver() func(time.Duration) {
	return func(d time.Duration) { m.fsync.Observe(d.Seconds()) }
}

// Proxy counts the proxy's requests by command and reply, and their
// handling latency by command. Its cells are resolved at construction:
// counting a request is two atomic additions and a histogram bucket.
type Proxy struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	count    [numCommands][numReplies]prometheus.Counter
	observe  [numCommands]prometheus.Observer
}

// The commands of the call_control protocol, and "other" for anything else
// (a confused proxy must not create label values without bound).
var commands = [...]string{"init", "start", "stop", "terminate", "debug", "other"}

const numCommands = len(commands)

// Reply classes: the protocol's fixed replies, "limit" for a number of
// seconds, "other" for the rest (operator replies, messages).
var replies = [...]string{"Ok", "No limit", "limit", "Limited", "No credit", "Locked", "Duplicated callid",
	"Call limit reached", "Error", "Not found", "other"}

const numReplies = len(replies)

func newProxy() *Proxy {
	p := &Proxy{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "proxy_requests_total",
			Help: "Requests answered on the proxy socket, by command and reply (limit = a number of seconds).",
		}, []string{"command", "reply"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "proxy_request_duration_seconds",
			Help:    "Time from reading a proxy request to its reply being ready, by command.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"command"}),
	}
	for c, cmd := range commands {
		for r, reply := range replies {
			p.count[c][r] = p.requests.WithLabelValues(cmd, reply)
		}
		p.observe[c] = p.latency.WithLabelValues(cmd)
	}
	return p
}

// Observe counts one answered request.
func (p *Proxy) Observe(command, reply string, took time.Duration) {
	c := commandIndex(command)
	p.count[c][replyIndex(reply)].Inc()
	p.observe[c].Observe(took.Seconds())
}

func commandIndex(cmd string) int {
	for i, c := range commands[:numCommands-1] {
		if c == cmd {
			return i
		}
	}
	return numCommands - 1
}

func replyIndex(reply string) int {
	reply = strings.TrimSuffix(reply, "\r\n") // terminate's reply
	if reply != "" && reply[0] >= '0' && reply[0] <= '9' {
		if _, err := strconv.Atoi(reply); err == nil {
			return 2
		}
	}
	for i, r := range replies[:numReplies-1] {
		if r == reply {
			return i
		}
	}
	return numReplies - 1
}

// Rating counts requests to the rating engines by engine, request and
// result, and their latency.
type Rating struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// Rating requests and results.
const (
	MaxSessionTime = "max_session_time"
	DebitBalance   = "debit_balance"

	ResultOK      = "ok"
	ResultTimeout = "timeout"
	ResultError   = "error"
)

func newRating() *Rating {
	return &Rating{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rating_requests_total",
			Help: "Requests to the rating engines, by engine, request (max_session_time, debit_balance) and result (ok, timeout, error).",
		}, []string{"engine", "request", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "rating_request_duration_seconds",
			Help:    "Latency of requests to the rating engines, by engine and request.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"engine", "request"}),
	}
}

// Observe counts one rating request. The engine label is an address from
// the configuration, so its values are bounded.
func (r *Rating) Observe(engine, request, result string, took time.Duration) {
	r.requests.WithLabelValues(engine, request, result).Inc()
	r.latency.WithLabelValues(engine, request).Observe(took.Seconds())
}
