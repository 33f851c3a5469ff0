"""T+1 reconciliation: match a channel account's statement for one Beijing day against the hub's records."""
