package main
import (
_ "gopkg.in/ini.v1"
_ "layeh.com/radius"
_ "github.com/go-sql-driver/mysql"
)
func main(){}
