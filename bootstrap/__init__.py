"""One-shot initialisation before the services start: Kafka topics and the database schema."""
