package main

import (
	"fmt"
	"strings"
)

// variant is one set of pool settings: PHP ini lines that php-fpm reads at
// start from the bench's scan directory (PHP_INI_SCAN_DIR), over the
// image's own (Debian's OPcache defaults: opcache.enable=1,
// validate_timestamps=1, revalidate_freq=2; the frameworks image preloads
// both applications, which every variant overrides).
type variant struct {
	name string
	// ini returns the settings for a pool that runs fw's jobs: preloading
	// is one script per php-fpm, each framework's own.
	ini func(fw framework) string
}

// poolIniDir is where the bench's host directory appears in php-fpm: the
// ini file of the variant in force.
const poolIniDir = "/fwbench/ini"

// preload is the setting the bridges' READMEs give the pool: OPcache on
// (the image's), with the application's preload script.
func preload(fw framework) string { return "opcache.preload=" + fw.preload + "\n" }

// variants are the pool settings the bench knows, shipped first.
var variants = []variant{
	{name: "shipped", ini: preload},
	{name: "no-preload", ini: func(framework) string { return "opcache.preload=\n" }},
	{name: "no-opcache", ini: func(framework) string { return "opcache.enable=0\nopcache.preload=\n" }},
	{name: "no-validate", ini: func(fw framework) string { return preload(fw) + "opcache.validate_timestamps=0\n" }},
}

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
