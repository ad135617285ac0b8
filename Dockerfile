# One image, both entry points: ironlb-operator and ironlb-speaker.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY --from=build /wheels /wheels
# nftables: the speaker programs NodePort forwarding (pool `forwarding: NodePort`) with nft.
RUN apt-get update && apt-get install -y --no-install-recommends nftables && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin ironlb
# The operator runs as this user; the speaker's DaemonSet keeps root's UID but only NET_RAW
# (plus NET_ADMIN for NodePort forwarding), with every other capability dropped.
USER 65532:65532
ENTRYPOINT []
CMD ["ironlb-operator"]
