"""Trust: our status list, other issuers, the signed trust list, verifier bundles, key rotation."""
