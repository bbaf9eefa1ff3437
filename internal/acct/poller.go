package acct

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/internal/radacct"
	"github.com/go-sql-driver/mysql"
)

// Columns names the radacct columns the poller reads. Empty fields take
// radacct's defaults (those CDRTool and the original used); ToTag is not
// needed to match, and kept for config compatibility.
type Columns struct {
	SessionID       string // the SIP Call-ID
	FromTag         string
	ToTag           string
	SessionTime     string
	StopTime        string
	ConnectInfoStop string
	MediaInfo       string
}

// DBConfig is the [RadiusDatabase] section.
type DBConfig struct {
	User     string
	Password string
	// Host is host, host:port (3306 by default) or a Unix socket path "/...".
	Host     string
	Database string
	// Table is an strftime pattern (%Y %m %d %y %%, see radacct.Table);
	// default radacct.DefaultTable.
	Table   string
	Columns Columns
	// QueryTimeout bounds connecting and each query; default 3s.
	QueryTimeout time.Duration
	// BatchSize is the most Call-IDs per query; default 500.
	BatchSize int
}

func (c *DBConfig) setDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Table, radacct.DefaultTable)
	def(&c.Columns.SessionID, radacct.DefaultSessionID)
	def(&c.Columns.FromTag, radacct.DefaultFromTag)
	def(&c.Columns.ToTag, radacct.DefaultToTag)
	def(&c.Columns.SessionTime, radacct.DefaultSessionTime)
	def(&c.Columns.StopTime, radacct.DefaultStopTime)
	def(&c.Columns.ConnectInfoStop, radacct.DefaultConnectInfoStop)
	def(&c.Columns.MediaInfo, radacct.DefaultMediaInfo)
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = 3 * time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
}

func (c *DBConfig) validate() error {
	if _, err := radacct.Table(c.Table, time.Now()); err != nil {
		return err
	}
	if c.Database == "" {
		return errors.New("database: empty")
	}
	cols := c.Columns
	for _, n := range []string{cols.SessionID, cols.FromTag, cols.ToTag, cols.SessionTime, cols.StopTime, cols.ConnectInfoStop, cols.MediaInfo} {
		if err := radacct.CheckName(n); err != nil {
			return fmt.Errorf("column: %w", err)
		}
	}
	return nil
}

// mysqlConfig builds the driver config with short timeouts so a dead or
// slow database fails a round instead of hanging it.
func (c *DBConfig) mysqlConfig(log *slog.Logger) *mysql.Config {
	mc := mysql.NewConfig()
	mc.User = c.User
	mc.Passwd = c.Password
	mc.DBName = c.Database
	switch {
	case strings.HasPrefix(c.Host, "/"):
		mc.Net, mc.Addr = "unix", c.Host
	case c.Host == "":
		mc.Net, mc.Addr = "tcp", "127.0.0.1:3306"
	default:
		mc.Net, mc.Addr = "tcp", c.Host
		if _, _, err := net.SplitHostPort(c.Host); err != nil {
			mc.Addr = net.JoinHostPort(strings.Trim(c.Host, "[]"), "3306")
		}
	}
	mc.Timeout = c.QueryTimeout
	mc.ReadTimeout = c.QueryTimeout
	mc.WriteTimeout = c.QueryTimeout
	mc.Logger = driverLogger{log}
	return mc
}

// driverLogger routes the driver's own complaints to our logger instead of
// its package-global one.
type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Print(v ...any) {
	l.log.Debug("mysql driver", "msg", strings.TrimSpace(fmt.Sprint(v...)))
}

// Poller checks tracked calls against the radacct tables.
type Poller struct {
	cfg     DBConfig
	tracker Tracker
	log     *slog.Logger
	db      *sql.DB
	selects string // "SELECT ... FROM " up to the table name
	now     func() time.Time

	mu sync.Mutex // one round at a time

	// Rounds run and rounds failed, for metrics.
	polls, pollErrors atomic.Uint64
}

// Polls says how many rounds ran and how many of them failed.
func (p *Poller) Polls() (rounds, failed uint64) { return p.polls.Load(), p.pollErrors.Load() }

// NewPoller validates cfg and prepares a connection pool; it does not
// connect, so a database that is down at start is not an error.
func NewPoller(cfg DBConfig, tracker Tracker, log *slog.Logger) (*Poller, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("acct: radius database config: %w", err)
	}
	conn, err := mysql.NewConnector(cfg.mysqlConfig(log))
	if err != nil {
		return nil, fmt.Errorf("acct: radius database config: %w", err)
	}
	db := sql.OpenDB(conn)
	// A poll needs one connection; keep one idle and recycle it so a
	// restarted server is picked up.
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(10 * time.Minute)
	c := cfg.Columns
	sel := fmt.Sprintf("SELECT %s, %s, %s, %s, %s, %s FROM ",
		quoteIdent(c.SessionID), quoteIdent(c.FromTag), quoteIdent(c.SessionTime),
		quoteIdent(c.StopTime), quoteIdent(c.ConnectInfoStop), quoteIdent(c.MediaInfo))
	return &Poller{cfg: cfg, tracker: tracker, log: log, db: db, selects: sel, now: time.Now}, nil
}

// Close releases the connection pool.
func (p *Poller) Close() error { return p.db.Close() }

// Run polls every interval until ctx is done, starting at once (calls may
// have ended while the daemon was down). A failed round is logged and the
// next one tries again.
func (p *Poller) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := p.Check(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("accounting check failed, retrying next round", "err", err, "interval", interval)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// row is one radacct row, NULLs as zero values except sessionTime.
type row struct {
	callID, fromTag string
	// sessionTime is DurationUnknown when AcctSessionTime is NULL: a Stop
	// without Acct-Session-Time (OpenSIPS's acc sends none) is stored so,
	// and is not a 0-second call.
	sessionTime     int64
	stopTime        string
	connectInfoStop string
	mediaInfo       string
}

// classify applies accounting.md: a stop time or a BYE's connect info means
// terminated; a media timeout without a BYE means timed out.
func (r row) classify() (Kind, bool) {
	if stopTimeSet(r.stopTime) || strings.TrimSpace(r.connectInfoStop) != "" {
		return Terminated, true
	}
	if strings.EqualFold(strings.TrimSpace(r.mediaInfo), "timeout") {
		return TimedOut, true
	}
	return 0, false
}

// stopTimeSet: old FreeRADIUS schemas use a zero date instead of NULL, and
// a schema keeping unix times (stopTimeField names any column) uses 0.
func stopTimeSet(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && s != "0" && !strings.HasPrefix(s, "0000-00-00")
}

type callKey struct{ callID, fromTag string }

// Check runs one round: it looks up every tracked call in this month's and
// last month's tables and closes those that accounting says ended. A query
// error (other than a missing table) ends the round at once, so a dead
// database costs one QueryTimeout; what was found before it is still closed.
func (p *Poller) Check(ctx context.Context) error {
	err := p.check(ctx)
	p.polls.Add(1)
	if err != nil {
		p.pollErrors.Add(1)
	}
	return err
}

func (p *Poller) check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()

	calls := p.tracker.TrackedCalls()
	if len(calls) == 0 {
		return nil
	}
	tracked := make(map[callKey]bool, len(calls))
	var ids []string
	seen := make(map[string]bool, len(calls))
	for _, c := range calls {
		tracked[callKey{c.CallID, c.FromTag}] = true
		if !seen[c.CallID] {
			seen[c.CallID] = true
			ids = append(ids, c.CallID)
		}
	}

	tables, err := p.tables()
	if err != nil {
		return err
	}
	found := make(map[callKey]Outcome)
	var firstErr error
	var missing []string
tables:
	for _, table := range tables {
		for start := 0; start < len(ids); start += p.cfg.BatchSize {
			batch := ids[start:min(start+p.cfg.BatchSize, len(ids))]
			rows, err := p.queryBatch(ctx, table, batch)
			if isNoSuchTable(err) {
				p.log.Debug("accounting table missing, skipped", "table", table)
				missing = append(missing, table)
				break
			}
			if err != nil {
				firstErr = fmt.Errorf("acct: query %s: %w", table, err)
				break tables
			}
			for _, r := range rows {
				k := callKey{r.callID, r.fromTag}
				if !tracked[k] {
					continue // another dialog with the same Call-ID
				}
				kind, ok := r.classify()
				if !ok {
					continue
				}
				// A stop beats a media timeout seen in another row.
				if prev, dup := found[k]; dup && prev.Kind == Terminated {
					continue
				}
				o := Outcome{CallID: r.callID, FromTag: r.fromTag, Kind: kind}
				if kind == Terminated {
					o.Duration = DurationUnknown
					if r.sessionTime >= 0 {
						o.Duration = int(r.sessionTime)
					}
				}
				found[k] = o
			}
		}
	}
	if firstErr == nil && len(missing) == len(tables) {
		// Not one table to read: a wrong pattern or database, and no
		// call can be ended; say so rather than count a good round.
		firstErr = fmt.Errorf("acct: none of the tables %s exists", strings.Join(missing, ", "))
	}
	for _, o := range found {
		p.log.Info("accounting says call ended", "callid", o.CallID, "from_tag", o.FromTag,
			"reason", o.Kind.String(), "duration", o.Duration)
		p.tracker.End(o)
	}
	return firstErr
}

// tables returns this month's and last month's table names, once each,
// and yesterday's: a pattern with %d names daily tables, and a call that
// stopped just before midnight has its row in yesterday's (for monthly
// tables it is one of the other two).
func (p *Poller) tables() ([]string, error) {
	now := p.now()
	var out []string
	for _, t := range []time.Time{now, now.AddDate(0, 0, -1), lastMonth(now)} {
		name, err := radacct.Table(p.cfg.Table, t)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// queryBatch queries ids; when the table's character set cannot compare
// one of them (a latin1 or utf8mb3 column against a 4-byte or invalid
// UTF-8 Call-ID from the network: "Illegal mix of collations"), it asks
// again for the ASCII ids together (every character set compares them)
// and for each other id alone, skipping those that still fail, so one such
// call does not fail every round for all the others. No row can hold such
// an id.
func (p *Poller) queryBatch(ctx context.Context, table string, ids []string) ([]row, error) {
	rows, err := p.query(ctx, table, ids)
	if !isCollationMix(err) {
		return rows, err
	}
	var ascii, other []string
	for _, id := range ids {
		if isASCII(id) {
			ascii = append(ascii, id)
		} else {
			other = append(other, id)
		}
	}
	rows = nil
	if len(ascii) > 0 {
		if rows, err = p.query(ctx, table, ascii); err != nil {
			return nil, err
		}
	}
	for _, id := range other {
		r, err := p.query(ctx, table, []string{id})
		if isCollationMix(err) {
			p.log.Debug("accounting: Call-ID not comparable with the table's character set, skipped",
				"table", table, "callid", id)
			continue
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

func (p *Poller) query(ctx context.Context, table string, ids []string) ([]row, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.QueryTimeout)
	defer cancel()
	var q strings.Builder
	q.WriteString(p.selects)
	q.WriteString(quoteTable(table))
	q.WriteString(" WHERE ")
	q.WriteString(quoteIdent(p.cfg.Columns.SessionID))
	q.WriteString(" IN (")
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('?')
		args[i] = id
	}
	q.WriteByte(')')

	rs, err := p.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var (
			callID, fromTag, stop, cinfo, media sql.NullString
			st                                  sql.NullInt64
		)
		if err := rs.Scan(&callID, &fromTag, &st, &stop, &cinfo, &media); err != nil {
			return nil, err
		}
		sessionTime := int64(DurationUnknown)
		if st.Valid {
			sessionTime = max(st.Int64, 0)
		}
		out = append(out, row{
			callID: callID.String, fromTag: fromTag.String, sessionTime: sessionTime,
			stopTime: stop.String, connectInfoStop: cinfo.String, mediaInfo: media.String,
		})
	}
	return out, rs.Err()
}

// isNoSuchTable: ER_NO_SUCH_TABLE, e.g. next month's table not created yet.
func isNoSuchTable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1146
}

// isCollationMix: ER_CANT_AGGREGATE_2COLLATIONS, _3COLLATIONS and
// _NCOLLATIONS, a Call-ID the column's character set cannot compare.
func isCollationMix(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1267 || me.Number == 1270 || me.Number == 1271)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
