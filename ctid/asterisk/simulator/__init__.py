"""A simulated Asterisk 22 PBX for ctid's tests, demo and benchmarks: real AMI (server) and
FastAGI (client) over TCP, the lab dialplan, app_queue, seat phones and ChanSpy.
"""

from ctid.asterisk.simulator.ami_server import AmiUser
from ctid.asterisk.simulator.config import (
    MemberSpec,
    PhoneSpec,
    QueueSpec,
    SeatSpec,
    SimulatorConfig,
    lab_config,
    pjsip_lab_config,
)
from ctid.asterisk.simulator.model import MemberInfo, SimCall
from ctid.asterisk.simulator.pbx import PbxSimulator, SimulatorError, lab

__all__ = [
    "AmiUser",
    "MemberInfo",
    "MemberSpec",
    "PbxSimulator",
    "PhoneSpec",
    "QueueSpec",
    "SeatSpec",
    "SimCall",
    "SimulatorConfig",
    "SimulatorError",
    "lab",
    "lab_config",
    "pjsip_lab_config",
]
