"""Everything that speaks to Asterisk: AMI link, FastAGI server, translation to events, PBX simulator."""
