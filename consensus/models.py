"""Models of the consensus app: aggregation runs and consensus labels."""
