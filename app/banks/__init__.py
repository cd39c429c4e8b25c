"""Cooperating banks (GD12, GD20) and the card's bank binding, kept apart from the card."""
