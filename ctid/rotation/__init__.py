"""Roster, service calendar, weekly lunch rotation and their scheduling."""
