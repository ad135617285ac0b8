# IronLB: the two set-up commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
export PATH := /usr/local/go/bin:$(PATH)
DEBS := iproute2 nftables iptables conntrack curl openssl ca-certificates procps graphviz tcpdump python3-venv \
	containerd runc containernetworking-plugins buildah mmdebstrap gcc libc6-dev util-linux
# FRR for the lab's router and nodes (`python -m e2e.lab up --bgp`); its service never runs on the host (deps).
DEBS += frr frr-pythontools

.PHONY: demo test test-long deps venv tools lint unit lab-down diagram image swarm

demo: deps venv tools
	$(VPY) -m e2e.demo

test: deps venv tools lint image
	$(VPY) -m pytest -p no:cacheprovider --durations=40 -m "not long" $(PYTEST_ARGS)

# The long runs `make test` leaves out (marker `long`), each beside a shorter test of the same thing there.
test-long: deps venv tools image
	$(VPY) -m pytest -p no:cacheprovider --durations=20 -m long $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check src tests e2e benchmarks
	$(VENV)/bin/lint-imports --no-cache

# No root needed: the privileged tests (tests/privileged: namespaces, packet sockets, bpf) run in `make test`.
unit: venv
	$(VPY) -m pytest -m "not privileged" tests/unit tests/chart -q

# Debian packages the lab uses (real kernel networking, nftables for kube-proxy, openssl for certs),
# and its real nodes (up --kubelet): containerd, runc, CNI plugins, buildah and mmdebstrap for the
# image, gcc and a static libc for the sandbox's pause.
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(NO_SERVICE_START) apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing || exit 1; \
	  case "$$missing " in *" frr "*) $(NO_HOST_FRR);; esac; \
	fi
	@command -v go >/dev/null || { echo "Go toolchain is required to build the lab's Kubernetes binaries"; exit 1; }

# Debian's frr starts its service on install. A policy-rc.d that refuses (unless the machine has its own) keeps it
# from starting, the service is then disabled so a reboot does not start it either, and an FRR daemon left in the
# host's network namespace fails the target: the lab runs FRR only inside its own namespaces.
NO_SERVICE_START := trap 'rm -f /usr/sbin/policy-rc.d.ironlb' EXIT; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then printf '\#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.ironlb && \
	chmod +x /usr/sbin/policy-rc.d.ironlb && ln -s policy-rc.d.ironlb /usr/sbin/policy-rc.d && \
	trap 'rm -f /usr/sbin/policy-rc.d /usr/sbin/policy-rc.d.ironlb' EXIT; fi;
NO_HOST_FRR := { command -v systemctl >/dev/null && systemctl disable --quiet frr 2>/dev/null; true; }; \
	for pid in $$(pgrep -x 'zebra|bgpd|bfdd|staticd|watchfrr'); do \
	  if [ "$$(readlink /proc/$$pid/ns/net)" = "$$(readlink /proc/self/ns/net)" ]; then \
	    echo "FRR's install left a daemon (pid $$pid) in the host's network namespace: systemctl stop frr"; exit 1; fi; \
	done

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $@

# kube-apiserver, kube-proxy, kubectl, kube-controller-manager, kube-scheduler, kubelet, pause, etcd
# and helm, built from the pinned Go modules into a cache outside the repo (see tools/build.sh);
# MetalLB's speaker and controller for benchmarks.compare, under their own key (tools/metallb/build.sh);
# promtool for the chart's alert tests, under its own key (tools/promtool/build.sh);
# CoreDNS, agnhost and e2e.test for the upstream e2e specs (tools/coredns/build.sh, tools/e2e/build.sh).
tools:
	@bash tools/build.sh
	@bash tools/metallb/build.sh
	@bash tools/promtool/build.sh
	@bash tools/coredns/build.sh >/dev/null
	@bash tools/e2e/build.sh >/dev/null

# The lab's images (IronLB from the Dockerfile on a Debian base, pause), when missing or out of date.
image: deps venv tools
	$(VPY) -m e2e.lab image

# N live fast planes on one bridge of their own (root: network namespaces), e.g. SWARM_ARGS="--nodes 100 --idle 60".
swarm: venv
	$(VPY) -m benchmarks.swarm $(SWARM_ARGS)

lab-down: venv
	$(VPY) -m e2e.lab down

diagram:
	dot -Tpng docs/architecture.dot -o docs/architecture.png

# The upstream LoadBalancer e2e specs on the real-node lab, one fresh lab per forwarding mode; the last line is
# the summary as JSON (docs/conformance.md). Root.
.PHONY: conformance
conformance: deps venv tools image
	$(VPY) -m e2e.conformance run --mode kubeproxy
	$(VPY) -m e2e.conformance run --mode nodeport
	@$(VPY) -m e2e.conformance render
