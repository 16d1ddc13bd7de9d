"""Roster, service calendar and weekly lunch rotation, and making the PBX follow them (enforcer,
scheduler, the live seat board)."""
