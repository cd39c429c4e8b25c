"""Misuse signals (JX17/JX18, SY12/SY13/SY17): alerts for administrators and credit records."""
