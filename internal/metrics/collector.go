package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// State is what the daemon already knows, read at scrape time. Its
// counters are totals since the daemon started.
type State struct {
	SessionsPending    int
	SessionsInProgress int
	Parties            int

	EnginesUp    int
	EnginesTotal int
	Engines      []Engine // each engine's state, as `callcontrol stats` shows it

	PrepaidRefused uint64 // calls flagged prepaid refused because no engine could rate them

	// ManagementSocket is the proxy's management socket as last checked:
	// "answering", "failing" or "unchecked".
	ManagementSocket string

	DebitsWaiting        int
	DebitsDelivered      uint64 // answered Ok
	DebitsAlreadyApplied uint64 // Failed after a send of unknown fate: had been applied
	DebitsFailed         uint64 // refused even with Force=1: dropped
	DebitRetries         uint64 // rounds that failed (a send, or recording it) and wait for a retry

	DialogEndsPending   int
	DialogEndsOldest    time.Duration // age of the oldest unconfirmed dialog end
	DialogEndsSent      uint64        // handed to the proxy's management socket
	DialogEndsConfirmed uint64        // the proxy ended the dialog, or had it ended already
	DialogEndsRetried   uint64        // sends the socket refused, and requests sent again for no answer
	DialogEndsFailed    uint64        // refused by the proxy, or no dialog id it can use

	AccountingPolls  uint64
	AccountingErrors uint64

	StateSync        bool          // fsync before replies
	StateFlushEvery  time.Duration // sync = interval: flushed within this; 0 otherwise
	StateFailing     bool          // the last write or sync failed
	StateWriteErrors uint64
	StateLastSync    time.Duration
	StateMaxSync     time.Duration

	Started time.Time
}

// Engine is one rating engine and its state ("connected", "idle" or
// "unreachable").
type Engine struct {
	Address string
	State   string
}

// Durable is whether a call answered now reaches the disk: the log's last
// write worked, and it fsyncs before the reply (sync = yes) or within its
// flush interval (sync = interval). With sync = no it never is.
func (s *State) Durable() bool { return (s.StateSync || s.StateFlushEvery > 0) && !s.StateFailing }

// metric is one value of State as a Prometheus metric. Adding a metric for
// a new State field is one line in metricList.
type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*State) float64
}

func metricList() []metric {
	const (
		gauge   = prometheus.GaugeValue
		counter = prometheus.CounterValue
	)
	m := func(name, help string, kind prometheus.ValueType, labels prometheus.Labels, value func(*State) float64) metric {
		return metric{prometheus.NewDesc(Namespace+"_"+name, help, nil, labels), kind, value}
	}
	state := func(s string) prometheus.Labels { return prometheus.Labels{"state": s} }
	return []metric{
		m("sessions", "Calls tracked, by state (pending: set up, not answered; in-progress: answered).", gauge, state("pending"),
			func(s *State) float64 { return float64(s.SessionsPending) }),
		m("sessions", "Calls tracked, by state (pending: set up, not answered; in-progress: answered).", gauge, state("in-progress"),
			func(s *State) float64 { return float64(s.SessionsInProgress) }),
		m("parties", "Parties (accounts) with at least one call tracked.", gauge, nil,
			func(s *State) float64 { return float64(s.Parties) }),
		m("engines_up", "Rating engines connected.", gauge, nil,
			func(s *State) float64 { return float64(s.EnginesUp) }),
		m("engines", "Rating engines configured.", gauge, nil,
			func(s *State) float64 { return float64(s.EnginesTotal) }),
		m("prepaid_refused_total", "Calls flagged prepaid refused (answered Error) because no rating engine could rate them.", counter, nil,
			func(s *State) float64 { return float64(s.PrepaidRefused) }),
		m("management_socket_up", "1 when the proxy's management socket answered its last check (dialog ends can be delivered).", gauge, nil,
			func(s *State) float64 { return b(s.ManagementSocket == "answering") }),
		m("debits_waiting", "Debits owed to the rating engine and not yet delivered (kept on disk).", gauge, nil,
			func(s *State) float64 { return float64(s.DebitsWaiting) }),
		m("debits_delivered_total", "Debits the rating engine answered Ok.", counter, nil,
			func(s *State) float64 { return float64(s.DebitsDelivered) }),
		m("debits_already_applied_total", "Debits resent after a crash that the engine had already applied.", counter, nil,
			func(s *State) float64 { return float64(s.DebitsAlreadyApplied) }),
		m("debits_failed_total", "Debits the engine refused even when forced: dropped, check the engine's log.", counter, nil,
			func(s *State) float64 { return float64(s.DebitsFailed) }),
		m("debit_retries_total", "Debit rounds that failed (a send, or recording it on disk) and wait for a retry.", counter, nil,
			func(s *State) float64 { return float64(s.DebitRetries) }),
		m("dialog_ends_pending", "Dialog ends asked of the proxy and not yet confirmed.", gauge, nil,
			func(s *State) float64 { return float64(s.DialogEndsPending) }),
		m("dialog_ends_oldest_seconds", "Age of the oldest dialog end the proxy has not confirmed (0 when none).", gauge, nil,
			func(s *State) float64 { return s.DialogEndsOldest.Seconds() }),
		m("dialog_ends_sent_total", "Dialog end requests sent to the proxy's management socket.", counter, nil,
			func(s *State) float64 { return float64(s.DialogEndsSent) }),
		m("dialog_ends_confirmed_total", "Dialog ends the proxy confirmed (ended, or already gone).", counter, nil,
			func(s *State) float64 { return float64(s.DialogEndsConfirmed) }),
		m("dialog_ends_retried_total", "Dialog end sends the management socket refused (full or absent), and requests sent again for no answer in time.", counter, nil,
			func(s *State) float64 { return float64(s.DialogEndsRetried) }),
		m("dialog_ends_failed_total", "Dialog ends the proxy refused (an error other than not found), and calls with no dialog id the proxy can use: those calls may still be up.", counter, nil,
			func(s *State) float64 { return float64(s.DialogEndsFailed) }),
		m("accounting_polls_total", "Rounds of radacct polling.", counter, nil,
			func(s *State) float64 { return float64(s.AccountingPolls) }),
		m("accounting_poll_errors_total", "Rounds of radacct polling that failed.", counter, nil,
			func(s *State) float64 { return float64(s.AccountingErrors) }),
		m("state_log_sync", "1 when the state log is fsynced before replies (sync = yes).", gauge, nil,
			func(s *State) float64 { return b(s.StateSync) }),
		m("state_log_flush_interval_seconds", "With sync = interval: the longest a write waits for its fsync (0 otherwise).", gauge, nil,
			func(s *State) float64 { return s.StateFlushEvery.Seconds() }),
		m("state_durable", "1 when calls reach the disk: the state log's last write worked and it fsyncs before replies (sync = yes) or within its interval (sync = interval).", gauge, nil,
			func(s *State) float64 { return b(s.Durable()) }),
		m("state_log_write_errors_total", "State log group writes or syncs that failed.", counter, nil,
			func(s *State) float64 { return float64(s.StateWriteErrors) }),
		m("state_log_last_fsync_seconds", "Latency of the state log's last fsync.", gauge, nil,
			func(s *State) float64 { return s.StateLastSync.Seconds() }),
		m("state_log_max_fsync_seconds", "Longest state log fsync since start.", gauge, nil,
			func(s *State) float64 { return s.StateMaxSync.Seconds() }),
		m("start_time_seconds", "When the daemon started, in seconds since the epoch.", gauge, nil,
			func(s *State) float64 { return float64(s.Started.UnixNano()) / 1e9 }),
	}
}

// b is a boolean as a gauge's value.
func b(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// collector reads State at scrape time, so nothing is counted twice and
// the call path pays nothing for these metrics.
type collector struct {
	state   func() State
	metrics []metric
}

// engineUp has one series per configured engine, so it is not in
// metricList, whose metrics have fixed labels.
var engineUpDesc = prometheus.NewDesc(Namespace+"_engine_up",
	"1 when the rating engine is reachable (connected or idle), 0 when unreachable.", []string{"engine"}, nil)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
	ch <- engineUpDesc
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.state()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&s))
	}
	for _, e := range s.Engines {
		ch <- prometheus.MustNewConstMetric(engineUpDesc, prometheus.GaugeValue, b(e.State != "unreachable"), e.Address)
	}
}
