package main

import (
	_ "github.com/go-sql-driver/mysql"
	_ "gopkg.in/ini.v1"
	_ "layeh.com/radius"
)

func main() {}
