"""Complaints and reports (JX5, SY14, SC22, GD11): filed by a holder or anyone with a contact,
tracked by an unguessable number, answered and closed by administrators, every step audited
and shown to the complainant as a timeline."""
