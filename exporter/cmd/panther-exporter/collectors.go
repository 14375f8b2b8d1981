package main

// Every collector registers itself in its package's init.
import (
	_ "github.com/pantheros/monitoring/exporter/collector/system"
)
