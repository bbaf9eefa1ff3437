module github.com/callcontrol/callcontrol

go 1.26.8

require (
	github.com/go-sql-driver/mysql v1.10.1
	gopkg.in/ini.v1 v1.67.3
	layeh.com/radius v0.0.0-20231213012653-1006025d24f8
)

require filippo.io/edwards25519 v1.2.0 // indirect
