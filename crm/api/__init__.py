"""The ingestion API (/api/v1/): JSON over HTTP with bearer API keys. See docs/api.md."""
