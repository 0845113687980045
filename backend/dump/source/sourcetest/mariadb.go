package sourcetest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// MariaDB is a private mariadbd on a unix socket (and a free loopback
// port); root has no password.
type MariaDB struct {
	*server
	Socket string
	Port   int
	client string
}

// StartMariaDB installs a data dir with mariadb-install-db and starts
// mariadbd --user=mysql when running as root.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	installDB := find(t, "mariadb-server", "mariadb-install-db", "mysql_install_db")
	server := find(t, "mariadb-server", "mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld")
	client := find(t, "mariadb-client", "mariadb", "mysql")
	u := lookupUser(t, "mysql", "mariadb-server")
	dir := tempDir(t, "dm-mariadb-", u)
	data := filepath.Join(dir, "data")
	var userArg []string
	if u != nil {
		userArg = []string{"--user=mysql"}
	}
	runAs(t, nil, dir, installDB, append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, userArg...)...)
	m := &MariaDB{Socket: filepath.Join(dir, "mysqld.sock"), Port: FreePort(t), client: client}
	m.server = start(t, "mariadbd", nil, dir, server, append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + m.Socket,
		"--port=" + strconv.Itoa(m.Port), "--bind-address=127.0.0.1", "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--skip-log-bin", "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0"}, userArg...)...)
	m.waitFor(func() error {
		return exec.Command(client, "--no-defaults", "--socket="+m.Socket, "--user=root", "-e", "SELECT 1").Run()
	})
	return m
}

// URL returns the source URL of database db over the socket.
func (m *MariaDB) URL(db string) string {
	return fmt.Sprintf("mysql://root@unix(%s)/%s", m.Socket, db)
}

// SQL runs a script (in db when not empty) and returns batch output.
func (m *MariaDB) SQL(t testing.TB, db, script string) string {
	t.Helper()
	args := []string{"--no-defaults", "--socket=" + m.Socket, "--user=root", "--batch", "--skip-column-names"}
	if db != "" {
		args = append(args, db)
	}
	return strings.TrimSpace(command(t, script, m.client, args...))
}
