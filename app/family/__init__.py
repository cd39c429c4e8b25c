"""The family service (亲情服务): a guardian acts for a ward within the scopes of their link."""
