"""dataprep"""
