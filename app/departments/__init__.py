"""Issuers: departments (and later training institutions, employers) that push signed
documents of the types they may issue, each authenticated as an API client, each with its
own signing keys (`app.departments.service`)."""
