"""Benefit payments (JX12, GD8, SC11): disbursements to the card's bank account, the ledger,
reconciliation against banks' statements."""
