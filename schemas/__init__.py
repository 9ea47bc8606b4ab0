"""Every contract between the services: topic names and headers, message shapes, database tables."""
