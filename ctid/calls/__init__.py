"""Calls and seats: state from events, the three-ring and talk-cap policies, IVR decisions."""
