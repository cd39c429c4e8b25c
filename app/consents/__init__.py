"""Consent-based department reads (no photocopies): a department asks, the holder approves
with the PIN or declines, the department reads exactly the approved items until the expiry."""
