"""Step 9, maintain: `dlw monitor` (drift of live predictions against the champion's
validation reference) and `dlw retrain` (champion against challenger)."""
