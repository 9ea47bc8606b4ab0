"""Test helpers shared by several suites: throwaway servers of a test's own (PostgreSQL, Kafka)."""
