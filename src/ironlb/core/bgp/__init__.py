"""BGP mode's pure core: what FRR is asked to hold (the model), which prefixes a node announces, and the
ordered changes from one desired state to the next."""
