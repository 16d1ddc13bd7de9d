"""The simulator tests: its AMI, FastAGI, queues, seats, ChanSpy, faults, and conformance with the recordings."""
