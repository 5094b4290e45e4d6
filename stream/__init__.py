"""The stream job: Debezium change events from Kafka applied to DynamoDB, committed only after the
writes (``stream.loop.Bridge``)."""
