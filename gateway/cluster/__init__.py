"""The cluster's operating side: local PostgreSQL, network namespaces, the demo, node commands."""
