"""The speaker's pure desired state: cluster objects in, a ranking table out. No I/O."""
