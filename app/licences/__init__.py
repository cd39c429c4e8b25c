"""E-licences linked to the card (JX11, GD9): pushed signed by their departments, shown by
holders, presented by QR, read by other departments with the holder's consent."""
