"""The speaker's control-plane process: watches, status, presence, fencing, forwarding; drives the fast plane."""
