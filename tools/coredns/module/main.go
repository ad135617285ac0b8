// Command coredns is CoreDNS with only the plugins the lab's cluster DNS uses: a Service's name
// resolves as in any cluster, and the build leaves out the cloud plugins' SDKs.
package main

import (
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/caddy/onevent"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// included is what the imports above register; the server runs them in CoreDNS's own order.
var included = []string{"cache", "errors", "health", "kubernetes", "loadbalance", "log", "loop", "ready", "reload"}

func init() {
	dnsserver.Directives = slices.DeleteFunc(slices.Clone(dnsserver.Directives), func(d string) bool {
		return !slices.Contains(included, d)
	})
}

func main() {
	coremain.Run()
}
