"""BGP mode: the speaker drives FRR (bgpd, bfdd, zebra in the Pod's frr container) over its vty sockets."""
