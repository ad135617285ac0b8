"""The fast plane: heartbeats, failure detection, ARP/NDP responders, in a process of their own."""
