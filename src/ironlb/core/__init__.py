"""Pure core: IP math, pools, allocator, sharing, selectors, election. Standard library only."""
