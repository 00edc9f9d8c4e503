package main

import (
	_ "embed"
	"fmt"
	"strings"
)

// variant is one set of pool settings: PHP ini lines that php-fpm reads at
// start from the bench's scan directory (PHP_INI_SCAN_DIR), over the
// image's own (Debian's OPcache defaults: opcache.enable=1,
// validate_timestamps=1, revalidate_freq=2, no preloading).
type variant struct {
	name string
	ini  string
	// recorded says the variant needs the files each entry script
	// includes, recorded beforehand (preloading them).
	recorded bool
	// skip names the frameworks not measured under the variant, with why.
	skip map[string]string
}

// poolDir is where the bench's host directory appears in php-fpm; the ini
// file is in its ini/ directory, the PHP scripts below in php/.
const (
	poolDir      = "/fwbench"
	poolIniDir   = poolDir + "/ini"
	poolPHPDir   = poolDir + "/php"
	recordScript = poolPHPDir + "/record.php"
	preloadFile  = poolPHPDir + "/preload.php"
)

// The scripts that record the files a request includes and preload them.
var (
	//go:embed record.php
	recordPHP string
	//go:embed preload.php
	preloadPHP string
)

// variants are the pool settings the bench knows, shipped first.
var variants = []variant{
	{name: "shipped"},
	{name: "no-opcache", ini: "opcache.enable=0\n"},
	{name: "no-validate", ini: "opcache.validate_timestamps=0\n"},
	{name: "preload", ini: "opcache.validate_timestamps=0\nopcache.preload=" + preloadFile + "\n", recorded: true,
		skip: map[string]string{"Symfony": "preloading the files a request includes breaks the kernel's container build " +
			"(it builds the container again and fails on a Console listener class): every job failed"}},
}

// recording is the pool setting under which record.php notes the files
// that each entry script includes.
var recording = variant{name: "recording", ini: "auto_prepend_file=" + recordScript + "\n"}

func allVariantNames() string {
	var names []string
	for _, v := range variants {
		names = append(names, v.name)
	}
	return strings.Join(names, ",")
}

// parseVariants returns the variants named in the comma-separated list,
// in the bench's order, shipped always first.
func parseVariants(list string) ([]variant, error) {
	want := map[string]bool{"shipped": true}
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			want[name] = true
		}
	}
	var out []variant
	for _, v := range variants {
		if want[v.name] {
			out = append(out, v)
			delete(want, v.name)
		}
	}
	for name := range want {
		return nil, fmt.Errorf("unknown variant %q (known: %s)", name, allVariantNames())
	}
	return out, nil
}
