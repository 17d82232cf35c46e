"""Segment analytics: RFM scores, lifecycle stages, K-means clusters and BG/NBD predictions,
computed in bulk (SQL aggregates, numpy arrays) and stored in segments.models.analytics."""
