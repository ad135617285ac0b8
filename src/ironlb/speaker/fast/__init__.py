"""The fast plane: heartbeats, failure detection, ARP/NDP responders, on their own thread."""
