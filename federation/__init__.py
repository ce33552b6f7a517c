"""Server-server API: keys and request signatures, discovery, the outbound client, and the
/_matrix/federation and /_matrix/key routes."""
