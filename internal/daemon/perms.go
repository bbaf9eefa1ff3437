package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/callcontrol/callcontrol/internal/config"
)

// warnUnsafeDirs warns about a directory holding the daemon's sockets or
// state that another local user could change: writable by others, or
// owned by a user who is neither root nor the daemon's. There, a user
// could replace the control socket with an impostor, or the state with
// calls of their choosing.
func warnUnsafeDirs(log *slog.Logger, what map[string]string) {
	for dir, role := range what {
		fi, err := os.Stat(dir)
		if err != nil {
			continue // missing: the part that uses it reports that
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		if fi.Mode().Perm()&0o002 != 0 {
			log.Warn("directory writable by every local user: another user could replace what the daemon keeps there; make it 0755 or stricter",
				"dir", dir, "holds", role, "mode", fi.Mode().Perm().String())
		}
		if st.Uid != 0 && int64(st.Uid) != int64(os.Geteuid()) {
			log.Warn("directory owned by another user, who could replace what the daemon keeps there; give it to root or the daemon's user",
				"dir", dir, "holds", role, "owner_uid", st.Uid, "daemon_uid", os.Geteuid())
		}
	}
}

// unsafeDirsToCheck lists the directories of the daemon's sockets and
// state, with what each holds.
func unsafeDirsToCheck(d *Daemon) map[string]string {
	cc := d.cfg.CallControl
	dirs := map[string]string{
		filepath.Dir(cc.Socket):        "the proxy socket",
		filepath.Dir(cc.ControlSocket): "the control socket",
		cc.StateDir:                    "the state (sessions, debits)",
	}
	if d.opts.RuntimeDir != "" {
		dirs[d.opts.RuntimeDir] = "the runtime files (sockets, pid file)"
	}
	return dirs
}

// warnReadableSecrets warns when the configuration file holds a password
// or a secret and every local user may read it.
func warnReadableSecrets(log *slog.Logger, cfg *config.Config) {
	var held []string
	if cfg.RadiusDatabase.Password != "" {
		held = append(held, "[RadiusDatabase] password")
	}
	if cfg.RadiusAccounting.Secret != "" {
		held = append(held, "[RadiusAccounting] secret")
	}
	if cfg.Path == "" || len(held) == 0 {
		return
	}
	fi, err := os.Stat(cfg.Path)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return
	}
	log.Warn("the configuration holds secrets and every local user can read it: chmod 0640 (owner root, group of the daemon's user)",
		"file", cfg.Path, "mode", fi.Mode().Perm().String(), "holds", strings.Join(held, ", "))
}
