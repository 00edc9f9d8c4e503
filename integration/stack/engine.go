package stack

import (
	"os"

	tclog "github.com/testcontainers/testcontainers-go/log"
)

// UseLocalEngine sets testcontainers-go up as the programs under
// integration/ (the bench, the framework bench, the soak) run it on this
// project's machines: no Ryuk, whose image cannot be pulled (each program
// removes what it started), ports reached as localhost, and no log lines
// of its own, which would drown the program's progress. A variable already
// set in the environment wins. testcontainers-go reads them once, on first
// use: call it before anything starts a container.
func UseLocalEngine() {
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "localhost",
	} {
		if _, ok := os.LookupEnv(k); !ok {
			os.Setenv(k, v)
		}
	}
	tclog.SetDefault(tclog.NewNoopLogger())
}
