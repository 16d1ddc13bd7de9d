"""Tests of the service calendar, the lunch rotation and the desk state (pure, fixed dates)."""
