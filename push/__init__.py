"""Push notifications: push rules, unread counts, pushers (HTTP gateways, Web Push)."""
