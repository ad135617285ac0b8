"""The kubernetes package's API client, for the operator and the CLI: in-cluster credentials or a kubeconfig.

The speaker does not load the kubernetes package: it uses IronLB's own client, ironlb.common.kubeapi.
"""

from __future__ import annotations

import os

from kubernetes import client, config


def api_client(pool_size: int = 16, kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An ApiClient from the in-cluster service account, else KUBECONFIG (or $KUBECONFIG, ~/.kube/config)."""
    cfg = client.Configuration()
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG")
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig:
        config.load_incluster_config(client_configuration=cfg)
    else:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    cfg.connection_pool_maxsize = pool_size
    return client.ApiClient(cfg)

