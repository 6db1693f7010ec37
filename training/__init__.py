"""Training, evaluation and export of the geolocation model (dataprep manifest → model bundle)."""
