# One image, both entry points: ironlb-operator and ironlb-speaker.
# BASE is any Debian-like image with python3 (and its venv module); users get the public one.
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# wheelhouse/ holds only a README in the repository: a normal build downloads from PyPI. An offline
# build (no index reachable from the build, as in the lab) fills it and passes PIP_ARGS="--no-index".
COPY wheelhouse /wheels
ARG PIP_ARGS=""
RUN python3 -m venv /opt/ironlb \
 && /opt/ironlb/bin/pip wheel --no-cache-dir $PIP_ARGS --find-links /wheels --wheel-dir /wheels .

FROM ${BASE}
ARG PIP_ARGS=""
ENV PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/ironlb/bin:$PATH
COPY --from=build /wheels /wheels
# nftables: the speaker programs NodePort forwarding (pool `forwarding: NodePort`) and steering around
# dead nodes with nft; conntrack: steering forgets the flows that led to a dead node's pods. A base that
# already has both (the lab's) needs no package download.
RUN if ! command -v nft >/dev/null || ! command -v conntrack >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends nftables conntrack \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -m venv /opt/ironlb \
 && /opt/ironlb/bin/pip install --no-cache-dir $PIP_ARGS --find-links /wheels /wheels/ironlb-*.whl \
 && rm -rf /wheels \
 && echo 'ironlb:x:65532:65532::/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'ironlb:x:65532:' >> /etc/group
# The operator runs as this user with no capabilities. The speaker's DaemonSet runs as uid 0 with
# only NET_RAW, NET_ADMIN and BPF (the last two for the in-kernel ARP responder and NodePort
# forwarding): a non-root process loses capabilities the runtime adds when it execs, since no
# ambient capabilities are granted.
USER 65532:65532
ENTRYPOINT []
CMD ["ironlb-operator"]
