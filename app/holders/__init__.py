"""E-card holders: device activation, PIN and lockout, sessions, and the phone's QR tokens."""
