// Package accttest runs a throwaway MariaDB for acct's tests (via
// scripts/mariadb.sh) and fills radacct tables.
package accttest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Require skips t with reason, or fails it when the CI environment variable
// is set (in CI a missing tool must not turn into a silently skipped test).
func Require(t testing.TB, reason error) {
	t.Helper()
	if reason == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: %v", reason)
	}
	t.Skip(reason)
}

// Available reports why a MariaDB cannot be started here, naming the
// package to install, or nil.
func Available() error {
	for _, b := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(b); err != nil && !isFile("/usr/sbin/"+b) && !isFile("/usr/bin/"+b) {
			return fmt.Errorf("%s not found: install the Debian package mariadb-server", b)
		}
	}
	if _, err := script(); err != nil {
		return err
	}
	return nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// script finds scripts/mariadb.sh above the working directory.
func script() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "mariadb.sh")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("accttest: %s: %w", p, err)
			}
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("accttest: scripts/mariadb.sh not found (no go.mod above the working directory)")
		}
		dir = up
	}
}

// MariaDB is a running throwaway server, a child process of the test.
type MariaDB struct {
	Dir  string
	Port int

	script string
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartMariaDB creates a data directory under dir (if missing) and starts
// mariadbd on a free 127.0.0.1 port, waiting until it answers.
func StartMariaDB(dir string) (*MariaDB, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	s, _ := script()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &MariaDB{Dir: dir, Port: port, script: s}
	if out, err := exec.Command(s, "init", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("accttest: mariadb init: %v: %s", err, out)
	}
	if err := m.Start(); err != nil {
		return nil, err
	}
	return m, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the server's Unix socket, for DBConfig.Host. The test servers
// listen on no TCP port: test packages run in parallel, and a port freed
// by one package's restart could be taken by another's server.
func (m *MariaDB) Addr() string { return filepath.Join(m.Dir, "mysqld.sock") }

// Start (re)starts the server on the same port and data directory.
func (m *MariaDB) Start() error {
	if m.cmd != nil {
		return errors.New("accttest: mariadb already running")
	}
	cmd := exec.Command(m.script, "run", m.Dir, strconv.Itoa(m.Port))
	// The server dies with the test binary even if cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("accttest: start mariadbd: %w", err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(m.done) }()

	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-m.done:
			m.cmd = nil
			return fmt.Errorf("accttest: mariadbd exited: %s", m.errorLog())
		default:
		}
		if err := m.ping(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			m.Stop()
			return fmt.Errorf("accttest: mariadbd does not answer: %v: %s", err, m.errorLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *MariaDB) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(m.Dir, "error.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

func (m *MariaDB) ping() error {
	db, err := m.Open("")
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// Stop ends the server (SIGTERM, then SIGKILL after a generous wait).
func (m *MariaDB) Stop() error {
	if m.cmd == nil {
		return nil
	}
	m.cmd.Process.Signal(syscall.SIGCONT) // in case it was frozen
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(60 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
	return nil
}

// Freeze stops the server process (SIGSTOP): connections hang instead of
// failing, like an overloaded database. Thaw resumes it.
func (m *MariaDB) Freeze() error { return m.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server.
func (m *MariaDB) Thaw() error { return m.signal(syscall.SIGCONT) }

func (m *MariaDB) signal(s syscall.Signal) error {
	if m.cmd == nil {
		return errors.New("accttest: mariadb not running")
	}
	return m.cmd.Process.Signal(s)
}

// Open connects as root to database dbname ("" for none).
func (m *MariaDB) Open(dbname string) (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "unix", m.Addr(), dbname
	// A server that accepts but never answers fails the test instead of
	// hanging it until the package timeout.
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 30*time.Second, 30*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// CreateDatabase creates (or empties) database name and returns a handle on it.
func (m *MariaDB) CreateDatabase(name string) (*sql.DB, error) {
	root, err := m.Open("")
	if err != nil {
		return nil, err
	}
	defer root.Close()
	for _, q := range []string{"DROP DATABASE IF EXISTS `" + name + "`", "CREATE DATABASE `" + name + "`"} {
		if _, err := root.Exec(q); err != nil {
			return nil, err
		}
	}
	return m.Open(name)
}

// CreateRadacct creates table like the radacct tables CDRTool's FreeRADIUS
// writes (the columns acct reads, plus a few around them). AcctStopTime is
// NOT NULL with a zero date, as in the old schemas.
func CreateRadacct(db *sql.DB, table string) error {
	_, err := db.Exec("CREATE TABLE `" + table + "` (" + `
		RadAcctId bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
		AcctSessionId varchar(255) NOT NULL DEFAULT '',
		SipFromTag varchar(128) NOT NULL DEFAULT '',
		SipToTag varchar(128) NOT NULL DEFAULT '',
		UserName varchar(64) NOT NULL DEFAULT '',
		AcctStartTime datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
		AcctStopTime datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
		AcctSessionTime int unsigned DEFAULT NULL,
		ConnectInfo_start varchar(32) NOT NULL DEFAULT '',
		ConnectInfo_stop varchar(32) DEFAULT NULL,
		MediaInfo varchar(32) DEFAULT NULL,
		KEY AcctSessionId (AcctSessionId)
	) DEFAULT CHARSET=utf8mb4`)
	return err
}

// Row is one radacct row to insert.
type Row struct {
	CallID, FromTag, ToTag string
	Stopped                bool // AcctStopTime set
	SessionTime            int  // AcctSessionTime, when Stopped
	ConnectInfoStop        string
	MediaInfo              string
}

// Insert adds rows to table.
func Insert(db *sql.DB, table string, rows ...Row) error {
	for _, r := range rows {
		stop := "0000-00-00 00:00:00"
		var st, cinfo, media any
		if r.Stopped {
			stop = time.Now().UTC().Format(time.DateTime)
			st = r.SessionTime
		}
		if r.ConnectInfoStop != "" {
			cinfo = r.ConnectInfoStop
		}
		if r.MediaInfo != "" {
			media = r.MediaInfo
		}
		_, err := db.Exec("INSERT INTO `"+table+"` (AcctSessionId, SipFromTag, SipToTag, AcctStartTime, AcctStopTime, AcctSessionTime, ConnectInfo_stop, MediaInfo) VALUES (?,?,?,NOW(),?,?,?,?)",
			r.CallID, r.FromTag, r.ToTag, stop, st, cinfo, media)
		if err != nil {
			return err
		}
	}
	return nil
}
