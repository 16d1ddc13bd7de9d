"""Tests for ctid.reports."""
