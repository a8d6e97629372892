"""Raw data sources: obtain, verify, cache, parse. One module per source."""
