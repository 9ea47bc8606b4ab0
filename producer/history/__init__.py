"""`python -m producer history`: import a past period from Binance's archive and REST API into binance.raw.

plan.py decides which file or REST window holds each part of the period (pure), archive.py fetches
and verifies data.binance.vision's files, rest_source.py pages the REST API within its weight,
state.py remembers what Kafka has acknowledged so a killed import resumes, run.py drives it all
and publishes the coverage markers, progress.py shows how far it is.
"""
