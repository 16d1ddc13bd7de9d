"""ctid: a CTI daemon that runs a 4-seat IT service desk beside Asterisk."""

__version__ = "0.1.0"
