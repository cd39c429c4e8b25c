"""The machinery of the mobile pages (`/h5/`): templates, cookies, CSRF, the page CSP, the
words in both languages. The routes are in `api/routes/h5.py`; the rules in `app/h5/` and the
holder domains."""
