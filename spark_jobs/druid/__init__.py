"""Apache Druid side of Dredge: the Kafka supervisor spec, a small HTTP client (stdlib only)
and the aggregates that check Druid against the enriched Delta table."""
