"""The holder's access log: every disclosure of a holder's data to someone else."""
