"""The holder's mobile web pages (`/h5/`): browser sessions in the store, CSRF tokens, the
PIN of the day before the first QR, and channel launch tickets. No HTTP here: `api/routes/h5.py`
and `api/h5/` render the pages."""
