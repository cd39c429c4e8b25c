"""The holder's notification inbox, fed from the audit stream (at least once, deduplicated)."""
