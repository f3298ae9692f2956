"""OTLP ingest: receivers, decoding, normalization, pricing catalog, span writer, demo traffic."""
